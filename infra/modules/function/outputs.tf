output "name" {
  description = "Deployed function name."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "HTTPS URL of the function."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service" {
  description = "Underlying Cloud Run service name."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "service_account_email" {
  description = "Runtime service account."
  value       = google_service_account.function.email
}

output "push_service_account_email" {
  description = "OIDC identity for push subscriptions to this function (null for HTTP functions)."
  value       = local.push_consumer ? google_service_account.push[0].email : null
}
