variable "project_id" {
  description = "Project of the bucket."
  type        = string
}

variable "name" {
  description = "Globally unique bucket name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be a valid bucket name (3-63 chars, lower case)."
  }
}

variable "location" {
  description = "Bucket location (region or multi-region)."
  type        = string
}

variable "labels" {
  description = "Labels of the bucket."
  type        = map(string)
  default     = {}
}

variable "versioning" {
  description = "Keep noncurrent object versions (not allowed together with a retention policy)."
  type        = bool
  default     = false
}

variable "noncurrent_versions_kept" {
  description = "With versioning, delete noncurrent versions beyond this many newer ones (0 = keep all)."
  type        = number
  default     = 0
}

variable "retention_days" {
  description = "Retention policy in days (0 = none): objects cannot be deleted or replaced before."
  type        = number
  default     = 0

  validation {
    condition     = var.retention_days >= 0
    error_message = "retention_days must not be negative."
  }
}

variable "retention_locked" {
  description = "Lock the retention policy (irreversible)."
  type        = bool
  default     = false
}

variable "soft_delete_days" {
  description = "Soft-delete window in days (0 disables, else 7..90)."
  type        = number
  default     = 7

  validation {
    condition     = var.soft_delete_days == 0 || (var.soft_delete_days >= 7 && var.soft_delete_days <= 90)
    error_message = "soft_delete_days must be 0 or between 7 and 90."
  }
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete a bucket that still holds objects."
  type        = bool
  default     = false
}

variable "log_bucket" {
  description = "Bucket receiving usage/access logs of this bucket (null = none)."
  type        = string
  default     = null
}
