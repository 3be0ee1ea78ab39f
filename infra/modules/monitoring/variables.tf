variable "project_id" {
  description = "Project whose logs, metrics and services are monitored."
  type        = string
}

variable "notification_channels" {
  description = "Monitoring notification channel ids (projects/<p>/notificationChannels/<id>) every alert notifies; created outside Terraform (e-mail, PagerDuty, Slack ...)."
  type        = list(string)
  default     = []
}

variable "services" {
  description = "Cloud Run service names of every function (error rate and latency alerts, dashboard)."
  type        = list(string)
}

variable "webhook_service" {
  description = "Cloud Run service name of the PSP webhook endpoint (its SLOs)."
  type        = string
}

variable "renewals_service" {
  description = "Cloud Run service name of the renewals function (its billed-on-time SLO)."
  type        = string
}

variable "dead_letter_suffix" {
  description = "Suffix of every dead-letter subscription (topology: <subscription>-dlq)."
  type        = string
  default     = "-dlq"
}

variable "thresholds" {
  description = "Alert thresholds; see the README's Operator runbook for what each alert means."
  type = object({
    unacked_age_s          = optional(number, 1800)
    webhook_5xx_ratio      = optional(number, 0.02)
    webhook_4xx_ratio      = optional(number, 0.25)
    signature_failures     = optional(number, 10)
    charge_failure_ratio   = optional(number, 0.3)
    function_error_ratio   = optional(number, 0.05)
    function_p99_ms        = optional(number, 5000)
    dispute_deadline_lines = optional(number, 0)
  })
  default = {}
}

variable "slo" {
  description = "SLO goals: webhook availability (non-5xx answers) and latency, renewals billed on time."
  type = object({
    webhook_availability = optional(number, 0.999)
    webhook_latency      = optional(number, 0.99)
    webhook_latency_ms   = optional(number, 1000)
    renewals_on_time     = optional(number, 0.99)
    renewals_on_time_s   = optional(number, 3600)
    rolling_period_days  = optional(number, 28)
  })
  default = {}

  validation {
    condition     = alltrue([for g in [var.slo.webhook_availability, var.slo.webhook_latency, var.slo.renewals_on_time] : g > 0 && g < 1])
    error_message = "SLO goals are fractions strictly between 0 and 1."
  }
}
