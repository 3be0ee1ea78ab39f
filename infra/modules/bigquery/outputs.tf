output "dataset_id" {
  description = "The dataset of the event tables and views."
  value       = google_bigquery_dataset.this.dataset_id
}

output "tables" {
  description = "Event table id by topic."
  value       = { for k, t in google_bigquery_table.events : k => t.table_id }
}

output "views" {
  description = "View ids by name."
  value       = { for k, v in google_bigquery_table.views : k => v.table_id }
}

output "subscriptions" {
  description = "BigQuery export subscription by topic."
  value       = { for k, s in google_pubsub_subscription.export : k => s.name }
}
