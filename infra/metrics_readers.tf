# Read access to Cloud Monitoring for the functions whose topology entry says `metrics_reader: true` (the
# operator console reads the webhook answers' log-based metric). roles/monitoring.viewer reads time series
# and metric descriptors only: no alert policy, dashboard or notification channel can be changed. Time series
# are only readable at project (metrics scope) level: there is no narrower resource to grant it on.

resource "google_project_iam_member" "metrics_reader" {
  for_each = toset([for k, f in local.functions : k if f.metrics_reader])

  project = var.project_id
  role    = "roles/monitoring.viewer"
  member  = "serviceAccount:${module.function[each.value].service_account_email}"
}
