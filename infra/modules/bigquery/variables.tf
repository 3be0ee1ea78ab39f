variable "project_id" {
  description = "Project of the dataset and the export subscriptions."
  type        = string
}

variable "dataset_id" {
  description = "BigQuery dataset holding the event tables and views."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]{0,1023}$", var.dataset_id))
    error_message = "dataset_id may contain only letters, digits and underscores."
  }
}

variable "location" {
  description = "Dataset location (a region or multi-region such as EU); immutable."
  type        = string
}

variable "tables" {
  description = "Map of topic name => { topic_id, table_id, schema (BigQuery JSON schema generated from the contracts) }."
  type = map(object({
    topic_id = string
    table_id = string
    schema   = string
  }))

  validation {
    condition     = alltrue([for t in values(var.tables) : contains([for c in jsondecode(t.schema) : c.name], "occurred_at")])
    error_message = "every event table needs the occurred_at column it is partitioned on."
  }
}

variable "views" {
  description = "Map of view name => query (standard SQL, already rendered with the dataset path)."
  type        = map(string)
  default     = {}
}

variable "transform_function" {
  description = "Name of the JavaScript function of the single message transform."
  type        = string
}

variable "transform_code" {
  description = "JavaScript single message transform copying the envelope attributes into the body."
  type        = string
}

variable "pubsub_service_agent" {
  description = "IAM member of the project's Pub/Sub service agent (writes the rows, dead-letters)."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the event tables, and keep their rows when the dataset is destroyed."
  type        = bool
  default     = true
}

variable "partition_expiration_days" {
  description = "Delete partitions older than this many days (null keeps events forever)."
  type        = number
  default     = null
}

variable "dead_letter_retention_s" {
  description = "Retention of messages that could not be written, in seconds."
  type        = number
  default     = 604800
}

variable "persistence_regions" {
  description = "Regions where dead-lettered messages may be stored at rest."
  type        = list(string)
}

variable "labels" {
  description = "Labels of every resource."
  type        = map(string)
  default     = {}
}
