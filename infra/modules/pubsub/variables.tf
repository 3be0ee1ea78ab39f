variable "project_id" {
  description = "Project of the topics."
  type        = string
}

variable "topics" {
  description = "Map of topic name => { description }."
  type = map(object({
    description = optional(string, "")
  }))

  validation {
    condition     = alltrue([for name in keys(var.topics) : can(regex("^[a-z][a-z0-9-]{2,62}$", name))])
    error_message = "topic names must be 3-63 chars of lower case letters, digits and hyphens."
  }
}

variable "labels" {
  description = "Labels of every topic."
  type        = map(string)
  default     = {}
}

variable "message_retention" {
  description = "Topic message retention (enables seek/replay of acknowledged messages)."
  type        = string
  default     = "86400s"
}

variable "persistence_regions" {
  description = "Regions where messages may be stored at rest."
  type        = list(string)
}
