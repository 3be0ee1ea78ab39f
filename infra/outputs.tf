output "function_urls" {
  description = "HTTPS URL of every function, by topology key."
  value       = { for k, f in module.function : k => f.uri }
}

output "webhook_url" {
  description = "Public PSP webhook base URL: point each PSP at <webhook_url>/<psp> (or /<psp>/<account>)."
  value       = try(module.function["webhooks"].uri, null)
}

output "function_service_accounts" {
  description = "Runtime service account of every function."
  value       = { for k, f in module.function : k => f.service_account_email }
}

output "dead_letter_subscriptions" {
  description = "Pull subscription holding each push subscription's dead letters (for replay)."
  value       = { for k, s in module.subscription : k => s.dead_letter_subscription }
}

output "invoice_bucket" {
  description = "Bucket of invoice PDFs."
  value       = module.invoice_bucket.name
}

output "secret_ids" {
  description = "Secret Manager secret id of every credential, by environment variable name (add versions with gcloud)."
  value       = module.secrets.ids
}

output "topics" {
  description = "Topic ids by name."
  value       = module.pubsub.ids
}

output "analytics" {
  description = "BigQuery dataset, event tables, views and export subscriptions of the business topics."
  value = {
    dataset       = module.analytics.dataset_id
    tables        = module.analytics.tables
    views         = module.analytics.views
    subscriptions = module.analytics.subscriptions
  }
}

output "monitoring" {
  description = "Log-based metrics, alert policies, SLOs and the dashboard."
  value = {
    log_metrics    = module.monitoring.log_metrics
    alert_policies = module.monitoring.alert_policies
    slos           = module.monitoring.slos
    dashboard      = module.monitoring.dashboard
  }
}

output "settlement_bucket" {
  description = "Bucket receiving PSP settlement reports (settlement/<psp>/<account>/<file>)."
  value       = module.settlement_bucket.name
}
