# Development environment. Replace project_id with your dev project.
project_id             = "payments-dev-example"
environment            = "dev"
region                 = "europe-west1"
firestore_location     = "europe-west1"
log_level              = "DEBUG"
deletion_protection    = false
firestore_pitr         = false
invoice_retention_days = 1
labels = {
  team = "payments"
}
