# Everything below is derived from topology.yaml, the single description of the system that the local
# stack reads too. Optional fields get their defaults here, so a function or subscription added to the
# file is deployed without touching any .tf file.
locals {
  topology = yamldecode(file("${path.module}/topology.yaml"))

  bundle_dir = coalesce(var.bundle_dir, "${path.module}/../build")

  topics = { for name, t in merge(try(local.topology.topics, {})) : name => {
    description = try(coalesce(t.description, ""), "")
  } }

  functions = { for key, f in merge(try(local.topology.functions, {})) : key => {
    # Cloud Run service names allow hyphens, not underscores.
    name          = replace(key, "_", "-")
    entry_point   = f.entry_point
    trigger       = f.trigger
    public        = try(f.public == true, false)
    publishes     = try(f.publishes == null ? [] : tolist(f.publishes), [])
    secrets       = [for s in try(f.secrets == null ? [] : tolist(f.secrets), []) : s if !contains(var.disabled_secrets, s)]
    memory        = try(coalesce(f.memory, "256Mi"), "256Mi")
    cpu           = try(tostring(f.cpu), null)
    timeout_s     = try(coalesce(f.timeout_s, 60), 60)
    concurrency   = try(coalesce(f.concurrency, 1), 1)
    min_instances = try(coalesce(f.min_instances, 0), 0)
    max_instances = try(coalesce(f.max_instances, 3), 3)
    env           = try(f.env == null ? {} : tomap(f.env), {})
    # Object access to the invoice bucket; by default only the invoices function has it.
    invoice_bucket = try(f.invoice_bucket == true, key == "invoices")
    # Buckets (keys of local.trigger_buckets in main.tf) whose object-finalize events invoke the function.
    bucket_triggers = try(f.bucket_triggers == null ? [] : tolist(f.bucket_triggers), [])
    # Buckets (keys of local.object_buckets in main.tf) whose objects the function creates and reads.
    buckets = try(f.buckets == null ? [] : tolist(f.buckets), [])
    # Reads and replays the dead letters of every subscription (the operator console; infra/dead_letters.tf).
    dead_letters = try(f.dead_letters == true, false)
    # Reads Cloud Monitoring time series (the operator console's webhook answers; infra/metrics_readers.tf).
    metrics_reader = try(f.metrics_reader == true, false)
  } }

  # One grant per (dead-letter reader, subscription): pull and ack on that subscription's "<name>-dlq".
  dead_letter_grants = { for pair in setproduct([for k, f in local.functions : k if f.dead_letters], keys(local.subscriptions)) :
    "${pair[0]}/${pair[1]}" => { function = pair[0], subscription = pair[1] }
  }

  subscriptions = { for name, s in merge(try(local.topology.subscriptions, {})) : name => {
    topic                 = s.topic
    function              = s.function
    ack_deadline_s        = try(coalesce(s.ack_deadline_s, 60), 60)
    max_delivery_attempts = try(coalesce(s.max_delivery_attempts, 10), 10)
    min_backoff_s         = try(coalesce(s.min_backoff_s, 10), 10)
    max_backoff_s         = try(coalesce(s.max_backoff_s, 600), 600)
    filter                = try(coalesce(s.filter, ""), "")
  } }

  schedules = { for name, s in merge(try(local.topology.schedules, {})) : name => {
    topic     = s.topic
    cron      = s.cron
    time_zone = try(coalesce(s.time_zone, "Etc/UTC"), "Etc/UTC")
    # Scheduler cannot compute per-run values; the consumer derives the tick instant from the
    # message's publishTime. Topology may override the body and attributes.
    data = try(jsonencode(s.data), jsonencode({ schedule = name }))
    attributes = try(tomap(s.attributes), {
      event_type = "billing.tick"
      producer   = "cloud-scheduler"
      schedule   = name
    })
  } }

  firestore_indexes = [for i in coalesce(try(local.topology.firestore.indexes, null), []) : {
    collection  = i.collection
    query_scope = try(coalesce(i.query_scope, "COLLECTION"), "COLLECTION")
    fields = [for fld in i.fields : {
      field_path   = fld.field_path
      order        = try(fld.order, null)
      array_config = try(fld.array_config, null)
    }]
  }]

  # TTL: idempotency records carry expire_at (shared/idempotency); Firestore deletes them after it.
  firestore_ttl_fields = concat(
    [{ collection = "idempotency", field = "expire_at" }],
    [for t in coalesce(try(local.topology.firestore.ttl, null), []) : { collection = t.collection, field = t.field }],
  )

  # Never-queried large fields: exempting them from single-field indexes saves write cost and keeps
  # documents clear of the index-entry limit: the idempotency result (shared/idempotency) and the
  # archived, scrubbed PSP payloads (shared/webhooks/store.py). Topology may list more.
  firestore_exemptions = concat(
    [
      { collection = "idempotency", field = "result" },
      { collection = "webhook_events", field = "raw" },
      { collection = "webhook_events", field = "raw_zlib" },
      { collection = "webhook_events", field = "headers" },
    ],
    [for e in coalesce(try(local.topology.firestore.exemptions, null), []) : { collection = e.collection, field = e.field }],
  )

  # Secret Manager ids are the env var names in lower-kebab-case (STRIPE_WEBHOOK_SECRET -> stripe-webhook-secret).
  secret_names = toset(flatten([for f in local.functions : f.secrets]))
  secret_ids   = { for s in local.secret_names : s => lower(replace(s, "_", "-")) }
}
