output "ids" {
  description = "Map of environment variable name => secret id (short name)."
  value       = { for k, s in google_secret_manager_secret.this : k => s.secret_id }
}

output "names" {
  description = "Map of environment variable name => full resource name, for IAM bindings."
  value       = { for k, s in google_secret_manager_secret.this : k => s.id }
}
