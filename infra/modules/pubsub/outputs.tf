output "ids" {
  description = "Map of topic name => topic id (projects/<p>/topics/<name>)."
  value       = { for k, t in google_pubsub_topic.this : k => t.id }
}
