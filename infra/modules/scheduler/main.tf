# Cloud Scheduler jobs that publish to Pub/Sub (billing ticks). Scheduler publishes with its service
# agent, which holds roles/cloudscheduler.serviceAgent (including pubsub.topics.publish) by default.

resource "google_cloud_scheduler_job" "this" {
  for_each = var.jobs

  project          = var.project_id
  region           = var.region
  name             = each.key
  description      = "Publishes to ${each.value.topic_id} (managed by Terraform)."
  schedule         = each.value.cron
  time_zone        = each.value.time_zone
  attempt_deadline = "30s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "5s"
    max_backoff_duration = "60s"
  }

  pubsub_target {
    topic_name = each.value.topic_id
    data       = base64encode(each.value.data)
    attributes = each.value.attributes
  }
}
