# The Firestore database (native mode), the composite indexes the queries need, TTL policies and
# single-field index exemptions.

resource "google_firestore_database" "this" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.pitr ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
}

locals {
  indexes = {
    for i in var.indexes :
    "${i.collection}:${i.query_scope}:${join(",", [for f in i.fields : "${f.field_path}:${coalesce(f.order, f.array_config, "?")}"])}" => i
  }

  # One field resource per (collection, field): TTL fields are also exempted from indexing, because
  # a monotonically growing timestamp index is a write hotspot and nothing queries expire_at.
  ttl         = { for t in var.ttl_fields : "${t.collection}/${t.field}" => merge(t, { ttl = true }) }
  exempt      = { for e in var.exemptions : "${e.collection}/${e.field}" => merge(e, { ttl = false }) }
  field_rules = merge(local.exempt, local.ttl)
}

resource "google_firestore_index" "this" {
  for_each = local.indexes

  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = each.value.collection
  query_scope = each.value.query_scope

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.field_path
      order        = fields.value.order
      array_config = fields.value.array_config
    }
  }
}

resource "google_firestore_field" "this" {
  for_each = local.field_rules

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.value.collection
  field      = each.value.field

  # An empty index_config removes every single-field index of the field.
  index_config {}

  dynamic "ttl_config" {
    for_each = each.value.ttl ? [1] : []
    content {}
  }
}
