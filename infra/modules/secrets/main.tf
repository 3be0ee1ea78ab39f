# Secret Manager secrets, one per credential. Only the containers are managed here: values are added
# out of band (`gcloud secrets versions add`) so they never reach Terraform state, plans or git.
resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = each.value
  labels    = var.labels

  annotations = {
    env-var = each.key
  }

  replication {
    auto {}
  }
}
