# Root module: wires the modules together from topology.yaml (see locals.tf). Nothing here names a
# particular function, topic or subscription: adding one to topology.yaml is the whole change.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  common_env = merge(var.extra_env, {
    GOOGLE_CLOUD_PROJECT = var.project_id
    INVOICE_BUCKET       = module.invoice_bucket.name
    EVIDENCE_BUCKET      = module.evidence_bucket.name
    LOG_LEVEL            = var.log_level
    IDEMPOTENCY_TTL_S    = tostring(var.idempotency_ttl_s)
  })

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Buckets a function may name in its topology `bucket_triggers` (object-finalize events via Eventarc).
  trigger_buckets = {
    settlement = module.settlement_bucket.name
  }

  # Buckets a function may name in its topology `buckets` (create and read of objects).
  object_buckets = {
    evidence = module.evidence_bucket.name
  }
}

resource "google_project_service" "this" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# --- storage ------------------------------------------------------------------------------------

module "invoice_bucket" {
  source = "./modules/bucket"

  project_id       = var.project_id
  name             = "${var.project_id}-invoices"
  location         = var.region
  labels           = { data = "invoices" }
  retention_days   = var.invoice_retention_days
  retention_locked = var.invoice_retention_locked
  # Invoices are immutable legal documents: the retention policy protects them, so versioning (which
  # Cloud Storage forbids alongside retention) is off; soft delete covers operator mistakes.
  versioning       = false
  soft_delete_days = 30
  force_destroy    = !var.deletion_protection

  depends_on = [google_project_service.this]
}

module "settlement_bucket" {
  source = "./modules/bucket"

  project_id = var.project_id
  # Settlement reports land under settlement/<psp>/<account>/<file>; the reconciliation function takes
  # each new object in once (its generation is the idempotency key).
  name             = "${var.project_id}-settlement"
  location         = var.region
  labels           = { data = "settlement-reports" }
  retention_days   = var.settlement_retention_days
  versioning       = false
  soft_delete_days = 30
  force_destroy    = !var.deletion_protection

  depends_on = [google_project_service.this]
}

module "evidence_bucket" {
  source = "./modules/bucket"

  project_id = var.project_id
  # Dispute evidence packets (disputes/<key>/evidence-<digest>.zip), written create-only by the disputes
  # function: a packet is what was sent to the PSP, so objects are kept as long as invoices.
  name             = "${var.project_id}-dispute-evidence"
  location         = var.region
  labels           = { data = "dispute-evidence" }
  retention_days   = var.invoice_retention_days
  versioning       = false
  soft_delete_days = 30
  force_destroy    = !var.deletion_protection

  depends_on = [google_project_service.this]
}

# Cloud Storage publishes object events through Pub/Sub topics that Eventarc creates: its service agent
# needs the publisher role, which GCP grants only at project level for these managed topics.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_project_iam_member" "gcs_eventarc_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

module "source_bucket" {
  source = "./modules/bucket"

  project_id               = var.project_id
  name                     = "${var.project_id}-function-sources"
  location                 = var.region
  labels                   = { data = "function-sources" }
  versioning               = true
  noncurrent_versions_kept = 5
  force_destroy            = true

  depends_on = [google_project_service.this]
}

# --- build: a dedicated identity and repository for function images -----------------------------

resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "functions"
  format        = "DOCKER"
  description   = "Images built from the function bundles (managed by Terraform)."

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_service_account" "builder" {
  project      = var.project_id
  account_id   = "fn-builder"
  display_name = "Function builds"
  description  = "Identity Cloud Build uses to build the function images (managed by Terraform)."
}

resource "google_artifact_registry_repository_iam_member" "builder_writer" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.builder.member
}

resource "google_storage_bucket_iam_member" "builder_sources" {
  bucket = module.source_bucket.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.builder.member
}

resource "google_project_iam_member" "builder_logs" {
  # Project scope is the only scope for writing build logs to Cloud Logging.
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.builder.member
}

# --- messaging ----------------------------------------------------------------------------------

module "pubsub" {
  source = "./modules/pubsub"

  project_id          = var.project_id
  topics              = local.topics
  persistence_regions = [var.region]

  depends_on = [google_project_service.this]
}

module "secrets" {
  source = "./modules/secrets"

  project_id = var.project_id
  secrets    = local.secret_ids

  depends_on = [google_project_service.this]
}

# --- functions ----------------------------------------------------------------------------------

module "function" {
  source   = "./modules/function"
  for_each = local.functions

  project_id            = var.project_id
  region                = var.region
  key                   = each.key
  name                  = each.value.name
  description           = "${each.value.trigger} function ${each.key} (topology.yaml)"
  entry_point           = each.value.entry_point
  trigger               = each.value.trigger
  public                = each.value.public
  runtime               = var.python_runtime
  bundle_zip            = "${local.bundle_dir}/${each.key}.zip"
  source_bucket         = module.source_bucket.name
  build_service_account = google_service_account.builder.id
  docker_repository     = google_artifact_registry_repository.functions.id
  memory                = each.value.memory
  cpu                   = each.value.cpu
  timeout_s             = each.value.timeout_s
  concurrency           = each.value.concurrency
  min_instances         = each.value.min_instances
  max_instances         = each.value.max_instances
  env                   = merge(local.common_env, each.value.env)
  secrets               = { for s in each.value.secrets : s => module.secrets.ids[s] }
  secret_names          = { for s in each.value.secrets : s => module.secrets.names[s] }
  publishes             = { for t in each.value.publishes : t => module.pubsub.ids[t] }
  invoice_bucket        = module.invoice_bucket.name
  invoice_bucket_access = each.value.invoice_bucket
  event_buckets         = { for b in each.value.bucket_triggers : b => local.trigger_buckets[b] }
  object_buckets        = { for b in each.value.buckets : b => local.object_buckets[b] }
  pubsub_service_agent  = local.pubsub_service_agent

  depends_on = [
    google_project_service.this,
    google_artifact_registry_repository_iam_member.builder_writer,
    google_storage_bucket_iam_member.builder_sources,
    google_project_iam_member.builder_logs,
    google_project_iam_member.gcs_eventarc_publisher,
  ]
}

module "subscription" {
  source   = "./modules/subscription"
  for_each = local.subscriptions

  project_id = var.project_id
  name       = each.key
  topic_id   = module.pubsub.ids[each.value.topic]
  # functions-framework turns a raw push into a CloudEvent and reads the topic from this path.
  push_endpoint              = "${module.function[each.value.function].uri}/projects/${var.project_id}/topics/${each.value.topic}"
  audience                   = module.function[each.value.function].uri
  push_service_account_email = module.function[each.value.function].push_service_account_email
  ack_deadline_s             = each.value.ack_deadline_s
  max_delivery_attempts      = each.value.max_delivery_attempts
  min_backoff_s              = each.value.min_backoff_s
  max_backoff_s              = each.value.max_backoff_s
  filter                     = each.value.filter
  dead_letter_retention_s    = var.dead_letter_retention_s
  pubsub_service_agent       = local.pubsub_service_agent
  persistence_regions        = [var.region]
}

module "scheduler" {
  source = "./modules/scheduler"

  project_id = var.project_id
  region     = var.region
  jobs = { for name, s in local.schedules : name => {
    topic_id   = module.pubsub.ids[s.topic]
    cron       = s.cron
    time_zone  = s.time_zone
    data       = s.data
    attributes = s.attributes
  } }

  depends_on = [google_project_service.this]
}

# --- state --------------------------------------------------------------------------------------

module "firestore" {
  source = "./modules/firestore"

  project_id          = var.project_id
  location            = coalesce(var.firestore_location, var.region)
  pitr                = var.firestore_pitr
  deletion_protection = var.deletion_protection
  indexes             = local.firestore_indexes
  ttl_fields          = local.firestore_ttl_fields
  exemptions          = local.firestore_exemptions

  depends_on = [google_project_service.this]
}

# --- analytics: the business topics in BigQuery --------------------------------------------------

locals {
  analytics_dataset = try(local.topology.analytics.dataset, "payments_events")
  # One line per topic in topology.yaml; the schema file is generated from the contracts
  # (`python -m infra.local.analytics schemas`) and checked in.
  analytics_tables = { for t in try(local.topology.analytics.topics, []) : t => {
    topic_id = module.pubsub.ids[t]
    table_id = replace(t, "-", "_")
    schema   = file("${path.module}/bigquery/schemas/${replace(t, "-", "_")}.json")
  } }
  analytics_views = { for f in fileset("${path.module}/bigquery/views", "*.sql") : trimsuffix(f, ".sql") =>
    templatefile("${path.module}/bigquery/views/${f}", { dataset = "${var.project_id}.${local.analytics_dataset}" })
  }
}

module "analytics" {
  source = "./modules/bigquery"

  project_id                = var.project_id
  dataset_id                = local.analytics_dataset
  location                  = var.analytics_location
  tables                    = local.analytics_tables
  views                     = local.analytics_views
  transform_function        = "envelopeToColumns"
  transform_code            = file("${path.module}/bigquery/envelope_to_columns.js")
  pubsub_service_agent      = local.pubsub_service_agent
  deletion_protection       = var.deletion_protection
  partition_expiration_days = var.analytics_partition_expiration_days
  dead_letter_retention_s   = var.dead_letter_retention_s
  persistence_regions       = [var.region]

  depends_on = [google_project_service.this]
}

# --- operations: log-based metrics, alerts, dashboard, SLOs --------------------------------------

module "monitoring" {
  source = "./modules/monitoring"

  project_id            = var.project_id
  notification_channels = var.notification_channels
  services              = [for f in local.functions : f.name]
  # Which functions the SLOs are about: topology.yaml's monitoring section.
  webhook_service  = local.functions[local.topology.monitoring.webhook_function].name
  renewals_service = local.functions[local.topology.monitoring.renewals_function].name
  thresholds       = var.alert_thresholds
  slo              = var.slo

  depends_on = [google_project_service.this]
}
