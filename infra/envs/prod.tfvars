# Production. Replace project_id with your production project.
project_id  = "payments-prod-example"
environment = "prod"
region      = "europe-west1"
# Firestore in `region` too (firestore_location unset): one region for the whole stack; see variables.tf.
log_level           = "INFO"
deletion_protection = true
firestore_pitr      = true
# Invoices are legal records: 10 years. Lock the policy once the value is final (irreversible).
invoice_retention_days   = 3650
invoice_retention_locked = false
labels = {
  team = "payments"
}
