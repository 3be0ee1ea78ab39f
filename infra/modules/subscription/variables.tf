variable "project_id" {
  description = "Project of the subscription."
  type        = string
}

variable "name" {
  description = "Subscription name; the dead-letter topic and its pull subscription are \"<name>-dlq\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,58}$", var.name))
    error_message = "name must be 3-59 chars of lower case letters, digits and hyphens (room for -dlq)."
  }
}

variable "topic_id" {
  description = "Source topic id."
  type        = string
}

variable "labels" {
  description = "Labels of the subscription and its dead-letter resources."
  type        = map(string)
  default     = {}
}

variable "push_endpoint" {
  description = "HTTPS endpoint of the consuming function (with /projects/<p>/topics/<t> so functions-framework builds the CloudEvent)."
  type        = string

  validation {
    condition     = startswith(var.push_endpoint, "https://")
    error_message = "push_endpoint must be an https URL."
  }
}

variable "audience" {
  description = "OIDC audience: the receiving Cloud Run service URL."
  type        = string
}

variable "push_service_account_email" {
  description = "Service account whose OIDC token authenticates each push (has run.invoker on the function)."
  type        = string
}

variable "ack_deadline_s" {
  description = "Seconds the function has to answer before Pub/Sub redelivers."
  type        = number

  validation {
    condition     = var.ack_deadline_s >= 10 && var.ack_deadline_s <= 600
    error_message = "ack_deadline_s must be between 10 and 600."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message moves to the dead-letter topic."
  type        = number

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub limits)."
  }
}

variable "min_backoff_s" {
  description = "Minimum retry backoff in seconds."
  type        = number

  validation {
    condition     = var.min_backoff_s >= 0 && var.min_backoff_s <= 600
    error_message = "min_backoff_s must be between 0 and 600."
  }
}

variable "max_backoff_s" {
  description = "Maximum retry backoff in seconds."
  type        = number

  validation {
    condition     = var.max_backoff_s >= 0 && var.max_backoff_s <= 600
    error_message = "max_backoff_s must be between 0 and 600."
  }
}

variable "filter" {
  description = "Optional subscription filter on attributes (e.g. attributes.event_type = \"invoice.finalized\")."
  type        = string
  default     = ""
}

variable "dead_letter_retention_s" {
  description = "Retention of dead-lettered messages, in seconds."
  type        = number
}

variable "pubsub_service_agent" {
  description = "IAM member of the project's Pub/Sub service agent."
  type        = string
}

variable "persistence_regions" {
  description = "Regions where dead-lettered messages may be stored at rest."
  type        = list(string)
}
