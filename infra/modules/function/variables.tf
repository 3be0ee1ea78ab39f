variable "project_id" {
  description = "Project of the function."
  type        = string
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "key" {
  description = "Topology key of the function (folder under functions/)."
  type        = string
}

variable "name" {
  description = "Deployed name (Cloud Run service name: lower case, digits, hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.name))
    error_message = "name must be lower case letters, digits and hyphens (max 50 chars)."
  }
}

variable "description" {
  description = "Human description of the function."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels of the function."
  type        = map(string)
  default     = {}
}

variable "entry_point" {
  description = "Python function decorated with functions_framework in main.py."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.entry_point))
    error_message = "entry_point must be a Python identifier."
  }
}

variable "trigger" {
  description = "http (called directly) or pubsub (HTTP endpoint fed by Pub/Sub push subscriptions)."
  type        = string

  validation {
    condition     = contains(["http", "pubsub"], var.trigger)
    error_message = "trigger must be http or pubsub."
  }
}

variable "public" {
  description = "Allow unauthenticated invocations (only the PSP webhook endpoint)."
  type        = bool
  default     = false
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
}

variable "bundle_zip" {
  description = "Path of the function's bundle zip (main.py + shared/ + requirements.txt)."
  type        = string
}

variable "source_bucket" {
  description = "Bucket holding function sources."
  type        = string
}

variable "build_service_account" {
  description = "Service account id (projects/<p>/serviceAccounts/<email>) Cloud Build uses to build the function."
  type        = string
}

variable "docker_repository" {
  description = "Artifact Registry repository id for the built images."
  type        = string
}

variable "memory" {
  description = "Memory per instance, e.g. 256Mi."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like 256Mi or 1Gi."
  }
}

variable "cpu" {
  description = "vCPU per instance (null: 1 when concurrency > 1, else the smallest allowed)."
  type        = string
  default     = null
}

variable "timeout_s" {
  description = "Request timeout in seconds."
  type        = number

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 3600
    error_message = "timeout_s must be between 1 and 3600."
  }
}

variable "concurrency" {
  description = "Concurrent requests per instance."
  type        = number

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be between 1 and 1000."
  }
}

variable "min_instances" {
  description = "Instances kept warm."
  type        = number

  validation {
    condition     = var.min_instances >= 0
    error_message = "min_instances must not be negative."
  }
}

variable "max_instances" {
  description = "Upper bound on instances (protects Firestore and the PSP APIs from a retry storm)."
  type        = number

  validation {
    condition     = var.max_instances >= 1
    error_message = "max_instances must be at least 1."
  }
}

variable "env" {
  description = "Plain environment variables."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Map of environment variable name => Secret Manager secret id, read at start as env vars."
  type        = map(string)
  default     = {}
}

variable "secret_names" {
  description = "Map of environment variable name => full secret resource name (for the accessor binding)."
  type        = map(string)
  default     = {}
}

variable "publishes" {
  description = "Map of topic name => topic id this function publishes to."
  type        = map(string)
  default     = {}
}

variable "invoice_bucket" {
  description = "Name of the invoice bucket."
  type        = string
  default     = null
}

variable "invoice_bucket_access" {
  description = "Grant create/read of objects in the invoice bucket (only the invoices function)."
  type        = bool
  default     = false
}

variable "object_buckets" {
  description = "Map of key => bucket name whose objects this function creates and reads (topology `buckets`)."
  type        = map(string)
  default     = {}
}

variable "pubsub_service_agent" {
  description = "IAM member of the project's Pub/Sub service agent."
  type        = string
}

variable "event_buckets" {
  description = "Map of bucket key => bucket name whose object-finalize events invoke this function (Eventarc)."
  type        = map(string)
  default     = {}
}
