# The event stream in BigQuery: a dataset, one table per exported topic (schema generated from the
# event contracts, partitioned by the event's occurred_at), one BigQuery subscription per topic that
# writes every message to its table, and the views for the daily questions.
#
# A BigQuery subscription maps only the message body's JSON fields to columns, and the envelope
# (event_type, event_id, occurred_at, ...) travels in the attributes. A JavaScript single message
# transform on the subscription copies the envelope into the body, so occurred_at is a real column to
# partition on; write_metadata adds message_id, publish_time and all attributes as JSON.

resource "google_bigquery_dataset" "this" {
  #checkov:skip=CKV_GCP_81:The dataset holds PSP-neutral event facts (no card data, scrubbed before publishing); Google-managed encryption as for the Pub/Sub topics it mirrors (see CKV_GCP_83 in .checkov.yaml).
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  location                   = var.location
  description                = "Business events exported from Pub/Sub (managed by Terraform)."
  labels                     = var.labels
  delete_contents_on_destroy = !var.deletion_protection
}

resource "google_bigquery_table" "events" {
  #checkov:skip=CKV_GCP_80:Same reason as the dataset: event facts without card data, Google-managed encryption.
  for_each = var.tables

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.this.dataset_id
  table_id            = each.value.table_id
  description         = "Every message of the ${each.key} topic, one row per delivery (deduplicate on event_id)."
  labels              = var.labels
  schema              = each.value.schema
  deletion_protection = var.deletion_protection
  clustering          = ["event_type"]

  time_partitioning {
    type          = "DAY"
    field         = "occurred_at"
    expiration_ms = var.partition_expiration_days == null ? null : var.partition_expiration_days * 86400000
  }
}

resource "google_bigquery_table" "views" {
  #checkov:skip=CKV_GCP_80:A view stores no data of its own to encrypt.
  for_each = var.views

  project     = var.project_id
  dataset_id  = google_bigquery_dataset.this.dataset_id
  table_id    = each.key
  description = "Daily question ${each.key} (infra/bigquery/views/${each.key}.sql)."
  labels      = var.labels
  # A changed query is an in-place update, so protection costs nothing and guards against a destroy.
  deletion_protection = var.deletion_protection

  view {
    query          = each.value
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.events]
}

# The Pub/Sub service agent writes the rows: data editor on this dataset only.
resource "google_bigquery_dataset_iam_member" "pubsub_writer" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = var.pubsub_service_agent
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = var.tables

  project                    = var.project_id
  name                       = "${each.key}-bigquery-dlq"
  labels                     = var.labels
  message_retention_duration = "${var.dead_letter_retention_s}s"

  message_storage_policy {
    allowed_persistence_regions = var.persistence_regions
  }
}

resource "google_pubsub_subscription" "export" {
  for_each = var.tables

  project                    = var.project_id
  name                       = "${each.key}-bigquery"
  topic                      = each.value.topic_id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  bigquery_config {
    table = "${var.project_id}.${google_bigquery_dataset.this.dataset_id}.${google_bigquery_table.events[each.key].table_id}"
    # Columns by name from the body (after the transform); a field the table lacks fails the write and the
    # message is dead-lettered instead of silently dropped: the schema test keeps the table in step.
    use_table_schema    = true
    write_metadata      = true
    drop_unknown_fields = false
  }

  message_transforms {
    javascript_udf {
      function_name = var.transform_function
      code          = var.transform_code
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = 10
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_bigquery_dataset_iam_member.pubsub_writer,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

resource "google_pubsub_subscription" "dead_letter" {
  for_each = var.tables

  project                    = var.project_id
  name                       = "${each.key}-bigquery-dlq"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_s}s"

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = var.tables

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = var.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "source_subscriber" {
  for_each = var.tables

  project      = var.project_id
  subscription = google_pubsub_subscription.export[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = var.pubsub_service_agent
}
