output "log_metrics" {
  description = "Log-based metric types by name (logging.googleapis.com/user/<name>)."
  value       = { for k, m in google_logging_metric.this : k => "logging.googleapis.com/user/${m.name}" }
}

output "alert_policies" {
  description = "Alert policy ids by key."
  value       = merge({ for k, a in google_monitoring_alert_policy.this : k => a.name }, { for k, a in google_monitoring_alert_policy.slo_burn : "slo_burn_${k}" => a.name })
}

output "slos" {
  description = "SLO resource names."
  value = {
    webhook_availability = google_monitoring_slo.webhook_availability.name
    webhook_latency      = google_monitoring_slo.webhook_latency.name
    renewals_on_time     = google_monitoring_slo.renewals_on_time.name
  }
}

output "dashboard" {
  description = "Dashboard id."
  value       = google_monitoring_dashboard.this.id
}
