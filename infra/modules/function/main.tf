# One Cloud Function (gen2) with its own service account and only the access it needs:
# publisher on the topics it publishes to, accessor on the secrets it reads, object access to the
# invoice bucket when asked, and the invoker binding that matches its trigger (public webhook, or a
# dedicated push identity for Pub/Sub push subscriptions).

locals {
  push_consumer = var.trigger == "pubsub"
  # Cloud Run serves more than one request per instance only with a whole CPU.
  cpu = coalesce(var.cpu, var.concurrency > 1 ? "1" : "0.583")
  # Consumers receive only Pub/Sub push (internal traffic); HTTP functions are reachable from the
  # internet and rely on IAM (private) or on signature verification (public webhook).
  ingress = local.push_consumer ? "ALLOW_INTERNAL_ONLY" : "ALLOW_ALL"
}

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = "fn-${substr(var.name, 0, 27)}"
  display_name = "Function ${var.name}"
  description  = "Runtime identity of the ${var.name} function (managed by Terraform)."
}

resource "google_storage_bucket_object" "source" {
  # The content hash in the name makes a code change produce a new object and thus a new revision.
  name   = "${var.name}/${filemd5(var.bundle_zip)}.zip"
  bucket = var.source_bucket
  source = var.bundle_zip
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = merge(var.labels, { function = var.key })

  build_config {
    runtime           = var.runtime
    entry_point       = var.entry_point
    service_account   = var.build_service_account
    docker_repository = var.docker_repository

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = local.cpu
    timeout_seconds                  = var.timeout_s
    max_instance_request_concurrency = var.concurrency
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    service_account_email            = google_service_account.function.email
    ingress_settings                 = local.ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = var.env

    dynamic "secret_environment_variables" {
      for_each = var.secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  # Secret access must exist before the first revision starts, or it fails to read its variables.
  depends_on = [google_secret_manager_secret_iam_member.accessor]
}

# --- what the function may do -------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = var.publishes

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function.member
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = var.secret_names

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

resource "google_storage_bucket_iam_member" "invoice_objects" {
  # Create and read only: the bucket's retention policy forbids replacing or deleting invoices anyway.
  for_each = var.invoice_bucket_access ? toset(["roles/storage.objectCreator", "roles/storage.objectViewer"]) : toset([])

  bucket = var.invoice_bucket
  role   = each.value
  member = google_service_account.function.member
}

resource "google_storage_bucket_iam_member" "objects" {
  # Create and read, never replace or delete: these buckets hold records (e.g. dispute evidence sent to a PSP).
  for_each = { for pair in setproduct(keys(var.object_buckets), ["roles/storage.objectCreator", "roles/storage.objectViewer"]) : "${pair[0]}/${pair[1]}" => { bucket = var.object_buckets[pair[0]], role = pair[1] } }

  bucket = each.value.bucket
  role   = each.value.role
  member = google_service_account.function.member
}

resource "google_project_iam_member" "firestore" {
  # Unavoidable project scope: Firestore (native mode) has no per-collection or per-database IAM for
  # data access, so roles/datastore.user on the project is the narrowest role that can read/write.
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.function.member
}

# --- who may call the function ------------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "public" {
  # The PSP webhook endpoint must be reachable anonymously; every request is authenticated by the
  # PSP's signature before anything is stored or published. Only functions marked public get this.
  count = var.public ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_service_account" "push" {
  count = local.push_consumer ? 1 : 0

  project      = var.project_id
  account_id   = "push-${substr(var.name, 0, 25)}"
  display_name = "Pub/Sub push to ${var.name}"
  description  = "OIDC identity of the push subscriptions that deliver to ${var.name} (managed by Terraform)."
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count = local.push_consumer ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.push[0].member
}

resource "google_service_account_iam_member" "push_token_creator" {
  # Pub/Sub's service agent mints the OIDC token of this push identity (needed on projects created
  # before April 2021, harmless after); scoped to this one service account.
  count = local.push_consumer ? 1 : 0

  service_account_id = google_service_account.push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = var.pubsub_service_agent
}

# --- object-finalize events from Cloud Storage (Eventarc) -----------------------------------------

resource "google_storage_bucket_iam_member" "event_objects" {
  # Read only: the function downloads the object the event names.
  for_each = var.event_buckets

  bucket = each.value
  role   = "roles/storage.objectViewer"
  member = google_service_account.function.member
}

resource "google_service_account" "eventarc" {
  count = length(var.event_buckets) > 0 ? 1 : 0

  project      = var.project_id
  account_id   = "evt-${substr(var.name, 0, 26)}"
  display_name = "Eventarc to ${var.name}"
  description  = "Identity of the Eventarc triggers that deliver bucket events to ${var.name} (managed by Terraform)."
}

resource "google_cloud_run_v2_service_iam_member" "eventarc_invoker" {
  count = length(var.event_buckets) > 0 ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.eventarc[0].member
}

resource "google_project_iam_member" "eventarc_receiver" {
  # Eventarc checks this role on the trigger's identity at project level only (no resource scope exists).
  count = length(var.event_buckets) > 0 ? 1 : 0

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.eventarc[0].member
}

resource "google_eventarc_trigger" "storage" {
  for_each = var.event_buckets

  project         = var.project_id
  location        = var.region
  name            = "${var.name}-${each.key}-finalized"
  service_account = google_service_account.eventarc[0].email
  labels          = merge(var.labels, { function = var.key })

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }

  matching_criteria {
    attribute = "bucket"
    value     = each.value
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.this.service_config[0].service
      region  = var.region
    }
  }

  depends_on = [google_project_iam_member.eventarc_receiver, google_cloud_run_v2_service_iam_member.eventarc_invoker]
}
