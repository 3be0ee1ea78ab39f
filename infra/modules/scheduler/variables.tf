variable "project_id" {
  description = "Project of the jobs."
  type        = string
}

variable "region" {
  description = "Cloud Scheduler region."
  type        = string
}

variable "jobs" {
  description = "Map of job name => target topic id, cron, time zone, message body and attributes."
  type = map(object({
    topic_id   = string
    cron       = string
    time_zone  = optional(string, "Etc/UTC")
    data       = optional(string, "{}")
    attributes = optional(map(string), {})
  }))
  default = {}

  validation {
    condition     = alltrue([for j in values(var.jobs) : length(split(" ", trimspace(j.cron))) == 5])
    error_message = "cron must have five fields (minute hour day-of-month month day-of-week)."
  }
}
