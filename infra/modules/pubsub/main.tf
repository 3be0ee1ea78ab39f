# Event topics. Access is granted per topic by the modules that publish (function, scheduler), never
# at project level.
resource "google_pubsub_topic" "this" {
  for_each = var.topics

  project                    = var.project_id
  name                       = each.key
  labels                     = var.labels
  message_retention_duration = var.message_retention

  message_storage_policy {
    allowed_persistence_regions = var.persistence_regions
  }
}
