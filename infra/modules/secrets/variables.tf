variable "project_id" {
  description = "Project of the secrets."
  type        = string
}

variable "secrets" {
  description = "Map of environment variable name => secret id."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for id in values(var.secrets) : can(regex("^[a-zA-Z0-9_-]{1,255}$", id))])
    error_message = "secret ids may contain only letters, digits, '_' and '-'."
  }
}

variable "labels" {
  description = "Labels of every secret."
  type        = map(string)
  default     = {}
}
