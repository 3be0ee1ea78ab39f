variable "project_id" {
  description = "GCP project that hosts one environment of the payments system."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id (6-30 chars, lower case, digits, hyphens)."
  }
}

variable "environment" {
  description = "Environment name; picks naming, protection and retention defaults."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be \"dev\" or \"prod\"."
  }
}

variable "region" {
  description = "Region for functions, Artifact Registry, buckets and Cloud Scheduler."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like europe-west1."
  }
}

variable "firestore_location" {
  description = <<-EOT
    Firestore location, immutable. Null (the default) puts the database in `region`, beside the functions,
    the invoice bucket and Pub/Sub's message storage: the stack runs in one region, so a multi-region
    database (eur3, nam5) would keep data served through a regional outage that stops everything using it,
    at twice the price per read and write (README, "Renewal chain cost"). Name eur3 when the functions are
    deployed in two regions.
  EOT
  type        = string
  default     = null
  nullable    = true

  validation {
    condition     = var.firestore_location == null || can(regex("^([a-z]+-[a-z]+[0-9]|[a-z]+[0-9])$", var.firestore_location))
    error_message = "firestore_location must be null, a region such as europe-west1, or a multi-region such as eur3."
  }
}

variable "labels" {
  description = "Extra labels on every resource that supports them."
  type        = map(string)
  default     = {}
}

variable "bundle_dir" {
  description = "Folder holding the per-function zips built by `make bundle` (<function>.zip); default ../build."
  type        = string
  default     = null
  nullable    = true
}

variable "python_runtime" {
  description = "Cloud Functions runtime of every function."
  type        = string
  default     = "python311"

  validation {
    condition     = can(regex("^python3[0-9]+$", var.python_runtime))
    error_message = "python_runtime must be a Python runtime id such as python311."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every function."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "idempotency_ttl_s" {
  description = "How long idempotency records live before Firestore TTL removes them (IDEMPOTENCY_TTL_S)."
  type        = number
  default     = 604800

  validation {
    # Longer than the longest PSP retry window (Stripe: 3 days, Adyen: up to 30 days of retries).
    condition     = var.idempotency_ttl_s >= 86400
    error_message = "idempotency_ttl_s must be at least one day: PSPs redeliver for days."
  }
}

variable "invoice_retention_days" {
  description = "Bucket retention of invoice PDFs (legal documents); objects cannot be deleted or replaced before."
  type        = number
  default     = 3650

  validation {
    condition     = var.invoice_retention_days >= 1 && var.invoice_retention_days <= 36500
    error_message = "invoice_retention_days must be between 1 and 36500."
  }
}

variable "invoice_retention_locked" {
  description = "Lock the invoice retention policy (IRREVERSIBLE: the bucket then cannot be deleted early)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the Firestore database and buckets from `terraform destroy`."
  type        = bool
  default     = true
}

variable "firestore_pitr" {
  description = "Enable Firestore point-in-time recovery (7 days)."
  type        = bool
  default     = false
}

variable "dead_letter_retention_s" {
  description = "How long dead-lettered messages stay available for replay."
  type        = number
  default     = 604800

  validation {
    condition     = var.dead_letter_retention_s >= 600 && var.dead_letter_retention_s <= 2678400
    error_message = "dead_letter_retention_s must be between 10 minutes and 31 days (Pub/Sub limits)."
  }
}

variable "extra_env" {
  description = "Plain (non-secret) environment variables added to every function."
  type        = map(string)
  default     = {}
}

variable "disabled_secrets" {
  description = "Secret env var names from topology.yaml NOT used in this environment (e.g. a PSP not contracted here): neither created nor mounted."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.disabled_secrets : can(regex("^[A-Z][A-Z0-9_]*$", s))])
    error_message = "disabled_secrets holds environment variable names such as BRAINTREE_PRIVATE_KEY."
  }
}

variable "analytics_location" {
  description = "Location of the BigQuery dataset of exported events (EU, US or a region); immutable."
  type        = string
  default     = "EU"
}

variable "analytics_partition_expiration_days" {
  description = "Drop event partitions older than this many days (null keeps them forever)."
  type        = number
  default     = null

  validation {
    condition     = var.analytics_partition_expiration_days == null || try(var.analytics_partition_expiration_days >= 1, false)
    error_message = "analytics_partition_expiration_days must be null or at least 1."
  }
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids every alert notifies (projects/<p>/notificationChannels/<id>; create them in the console or with gcloud: e-mail, PagerDuty, Slack)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels holds ids such as projects/my-project/notificationChannels/123."
  }
}

variable "alert_thresholds" {
  description = "Overrides of the alert thresholds (modules/monitoring variable thresholds; defaults in the README's Operator runbook)."
  type        = map(number)
  default     = {}
}

variable "slo" {
  description = "Overrides of the SLO goals (modules/monitoring variable slo)."
  type        = map(number)
  default     = {}
}
variable "settlement_retention_days" {
  description = "Bucket retention of PSP settlement reports (the audit trail of reconciliation)."
  type        = number
  default     = 2555

  validation {
    condition     = var.settlement_retention_days >= 1 && var.settlement_retention_days <= 36500
    error_message = "settlement_retention_days must be between 1 and 36500."
  }
}
