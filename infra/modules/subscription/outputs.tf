output "id" {
  description = "Push subscription id."
  value       = google_pubsub_subscription.this.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic id."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Pull subscription on the dead-letter topic, used for replay."
  value       = google_pubsub_subscription.dead_letter.name
}
