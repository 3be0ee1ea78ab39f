output "database" {
  description = "Database name."
  value       = google_firestore_database.this.name
}

output "indexes" {
  description = "Composite index ids by key."
  value       = { for k, i in google_firestore_index.this : k => i.id }
}
