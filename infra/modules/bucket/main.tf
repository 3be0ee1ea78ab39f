# A private Cloud Storage bucket: uniform bucket-level access, public access prevention enforced, and
# either a retention policy (immutable documents) or object versioning (mutable artefacts). Cloud
# Storage refuses both on one bucket, so the variables make the choice explicit.
resource "google_storage_bucket" "this" {
  #checkov:skip=CKV_GCP_78:Versioning is a variable: on for mutable artefacts, off where a retention policy protects immutable objects (invoices), since Cloud Storage forbids both on one bucket.
  project                     = var.project_id
  name                        = var.name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  lifecycle {
    precondition {
      condition     = !(var.versioning && var.retention_days > 0)
      error_message = "Cloud Storage does not allow object versioning on a bucket with a retention policy."
    }
  }

  versioning {
    enabled = var.versioning
  }

  dynamic "retention_policy" {
    for_each = var.retention_days > 0 ? [1] : []
    content {
      retention_period = var.retention_days * 86400
      is_locked        = var.retention_locked
    }
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  dynamic "lifecycle_rule" {
    for_each = var.noncurrent_versions_kept > 0 ? [1] : []
    content {
      condition {
        num_newer_versions = var.noncurrent_versions_kept
        with_state         = "ARCHIVED"
      }
      action {
        type = "Delete"
      }
    }
  }

  dynamic "logging" {
    for_each = var.log_bucket == null ? [] : [var.log_bucket]
    content {
      log_bucket = logging.value
    }
  }
}
