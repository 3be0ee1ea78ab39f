# Alerts, dashboard and SLOs of the payments platform. The log-based metrics come from
# log_metrics.yaml (the same file the tests evaluate against the lines the code writes); the rest uses
# Cloud Run and Pub/Sub's own metrics. What each alert means and what to do: README, Operator runbook.

locals {
  log_metrics = yamldecode(file("${path.module}/log_metrics.yaml")).metrics
  user        = "logging.googleapis.com/user"
  services    = join(",", [for s in var.services : "\"${s}\""])
  run         = "resource.type=\"cloud_run_revision\" AND resource.label.service_name=one_of(${local.services})"
  dlq_match   = "resource.label.subscription_id=monitoring.regex.full_match(\".*${var.dead_letter_suffix}\")"
  t           = var.thresholds
  runbook     = "See README.md, section \"Operator runbook\", for what to check and do."

  # One threshold condition per alert: the numerator filter, an optional denominator (a ratio), the
  # aligner over `window`, the series it is evaluated per (`by`) and how long it must hold (`for`).
  alerts = {
    dead_letters = {
      name        = "Messages in a dead-letter subscription"
      severity    = "ERROR"
      filter      = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dlq_match}"
      denominator = null
      aligner     = "ALIGN_MAX"
      reducer     = "REDUCE_MAX"
      by          = ["resource.label.subscription_id"]
      window      = "300s"
      threshold   = 0
      hold        = "0s"
      doc         = "A message failed every delivery attempt and waits in a `-dlq` pull subscription. Fix the cause (function logs: `undeliverable` or `handler failed`), then `python -m shared.ops.deadletters replay <subscription>`."
    }
    oldest_unacked = {
      name        = "Oldest unacknowledged message too old"
      severity    = "ERROR"
      filter      = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND NOT ${local.dlq_match}"
      denominator = null
      aligner     = "ALIGN_MAX"
      reducer     = "REDUCE_MAX"
      by          = ["resource.label.subscription_id"]
      window      = "300s"
      threshold   = local.t.unacked_age_s
      hold        = "600s"
      doc         = "A subscription is not keeping up or its consumer keeps nacking: check the consuming function's errors, instances (max_instances) and the subscription's backlog."
    }
    webhook_5xx = {
      name        = "Webhook 5xx rate per PSP"
      severity    = "CRITICAL"
      filter      = "metric.type=\"${local.user}/webhook_5xx\""
      denominator = "metric.type=\"${local.user}/webhook_answers\""
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp"]
      window      = "300s"
      threshold   = local.t.webhook_5xx_ratio
      hold        = "300s"
      doc         = "The webhook answers 503 (Firestore or Pub/Sub unavailable) or 500 (a bug). PSPs retry, and the backfill recovers what they give up on; check the function's ERROR lines."
    }
    webhook_4xx = {
      name        = "Webhook 4xx rate per PSP"
      severity    = "WARNING"
      filter      = "metric.type=\"${local.user}/webhook_4xx\""
      denominator = "metric.type=\"${local.user}/webhook_answers\""
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp"]
      window      = "900s"
      threshold   = local.t.webhook_4xx_ratio
      hold        = "900s"
      doc         = "Many refusals for one PSP: group the `request rejected` lines by `error_code` (payload shape changed, mode mismatch, an account not configured)."
    }
    webhook_signature_failures = {
      name        = "Webhook signature failures per PSP (broken secret?)"
      severity    = "CRITICAL"
      filter      = "metric.type=\"${local.user}/webhook_signature_failures\""
      denominator = null
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp"]
      window      = "600s"
      threshold   = local.t.signature_failures
      hold        = "0s"
      doc         = "Authentic deliveries are refused when the secret in Secret Manager does not match the PSP dashboard's (a rotation half done). Add the new secret as a version (both values comma-separated during a rotation)."
    }
    webhook_gaps = {
      name        = "Webhooks missed (recovered by the backfill)"
      severity    = "WARNING"
      filter      = "metric.type=\"${local.user}/webhook_gap_detected\""
      denominator = null
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp", "metric.label.account"]
      window      = "3600s"
      threshold   = 0
      hold        = "0s"
      doc         = "The PSP listed events our archive lacked. They are published now, but the endpoint is missing deliveries: check the PSP dashboard's delivery log, the endpoint URL and the signing secret."
    }
    webhook_backfill_failures = {
      name        = "Backfill failing for an account"
      severity    = "ERROR"
      filter      = "metric.type=\"${local.user}/webhook_backfill_failures\""
      denominator = null
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp", "metric.label.account"]
      window      = "3600s"
      threshold   = 2
      hold        = "0s"
      doc         = "The backfill cannot list a PSP's events (API down, key revoked or lacking the read scope). Its progress is kept; the `webhook.backfill_failed` lines say why."
    }
    renewal_charge_failures = {
      name        = "Renewal charge failure rate per PSP"
      severity    = "ERROR"
      filter      = "metric.type=\"${local.user}/renewal_charges\" AND metric.label.status=\"failed\""
      denominator = "metric.type=\"${local.user}/renewal_charges\""
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp"]
      window      = "3600s"
      threshold   = local.t.charge_failure_ratio
      hold        = "0s"
      doc         = "Far more declines than usual: group `renewal.charge` lines by `decline_code`. One code dominating (e.g. `do_not_honor` everywhere) suggests a PSP or configuration problem rather than customers."
    }
    invoice_audit_failures = {
      name        = "Invoice numbering audit failed"
      severity    = "CRITICAL"
      filter      = "metric.type=\"${local.user}/invoice_audit_failures\""
      denominator = null
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.series_id"]
      window      = "3600s"
      threshold   = 0
      hold        = "0s"
      doc         = "A numbering series has a gap or a duplicate: a legal defect. Run `python -m shared.ops.invoices audit --series <series_id>` and escalate to finance before issuing more in that series."
    }
    billing_blocked = {
      name        = "Billing blocked for a subscription"
      severity    = "ERROR"
      filter      = "metric.type=\"${local.user}/billing_blocked\""
      denominator = null
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.stage"]
      window      = "3600s"
      threshold   = 0
      hold        = "0s"
      doc         = "The planner could not price or claim a subscription (it stays due and is retried every tick; the others are billed), or usage could not be priced for a threshold. The `billing.blocked` lines name the subscription (`doc`) or the customer and the cause's class."
    }
    reconciliation_exceptions = {
      name        = "Reconciliation exceptions"
      severity    = "ERROR"
      filter      = "metric.type=\"${local.user}/reconciliation_exceptions\""
      denominator = null
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp", "metric.label.kind"]
      window      = "3600s"
      threshold   = 0
      hold        = "0s"
      doc         = "Settlement data and our records disagree. `missing_in_ledger` also catches webhooks of PSPs without an event list (Adyen, Braintree)."
    }
    dispute_deadlines = {
      name        = "Dispute evidence due soon"
      severity    = "WARNING"
      filter      = "metric.type=\"${local.user}/dispute_deadlines\""
      denominator = null
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["metric.label.psp"]
      window      = "3600s"
      threshold   = local.t.dispute_deadline_lines
      hold        = "0s"
      doc         = "A dispute's evidence deadline is near and nothing was submitted: the lines carry `dispute_id` and `due_at`."
    }
    function_errors = {
      name        = "Function 5xx rate"
      severity    = "ERROR"
      filter      = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run} AND metric.label.response_code_class=\"5xx\""
      denominator = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run}"
      aligner     = "ALIGN_SUM"
      reducer     = "REDUCE_SUM"
      by          = ["resource.label.service_name"]
      window      = "300s"
      threshold   = local.t.function_error_ratio
      hold        = "300s"
      doc         = "For a Pub/Sub function a 5xx is a nack (redelivered, then dead-lettered); for an HTTP one an outage or a bug. The function's ERROR lines carry the reason."
    }
    function_latency = {
      name        = "Function p99 latency"
      severity    = "WARNING"
      filter      = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run}"
      denominator = null
      aligner     = "ALIGN_PERCENTILE_99"
      reducer     = "REDUCE_MAX"
      by          = ["resource.label.service_name"]
      window      = "300s"
      threshold   = local.t.function_p99_ms
      hold        = "600s"
      doc         = "Requests are slow: Firestore contention (the claims' retries), a slow PSP API, or too few instances."
    }
  }
}

resource "google_logging_metric" "this" {
  for_each = local.log_metrics

  project          = var.project_id
  name             = each.key
  description      = each.value.description
  filter           = each.value.filter
  label_extractors = each.value.labels
  value_extractor  = try(each.value.value, null)

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = try(each.value.value, null) == null ? "INT64" : "DISTRIBUTION"
    unit         = try(each.value.unit, "1")
    display_name = each.key

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  dynamic "bucket_options" {
    for_each = try(each.value.value, null) == null ? [] : [1]
    content {
      exponential_buckets {
        num_finite_buckets = 24
        growth_factor      = 2
        scale              = 1
      }
    }
  }
}

resource "google_monitoring_alert_policy" "this" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = each.value.name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = var.notification_channels

  conditions {
    display_name = each.value.name

    condition_threshold {
      filter             = each.value.filter
      comparison         = "COMPARISON_GT"
      threshold_value    = each.value.threshold
      duration           = each.value.hold
      denominator_filter = each.value.denominator

      aggregations {
        alignment_period     = each.value.window
        per_series_aligner   = each.value.aligner
        cross_series_reducer = each.value.reducer
        group_by_fields      = each.value.by
      }

      dynamic "denominator_aggregations" {
        for_each = each.value.denominator == null ? [] : [1]
        content {
          alignment_period     = each.value.window
          per_series_aligner   = each.value.aligner
          cross_series_reducer = each.value.reducer
          group_by_fields      = each.value.by
        }
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    content   = "${each.value.doc}\n\n${local.runbook}"
    mime_type = "text/markdown"
  }

  # A condition on a log-based metric is refused until the metric exists.
  depends_on = [google_logging_metric.this]
}

# --- SLOs ----------------------------------------------------------------------------------------

resource "google_monitoring_custom_service" "webhooks" {
  project      = var.project_id
  service_id   = "payments-webhooks"
  display_name = "PSP webhook endpoint"
}

resource "google_monitoring_custom_service" "renewals" {
  project      = var.project_id
  service_id   = "payments-renewals"
  display_name = "Subscription renewals"
}

locals {
  webhook_run = "resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"${var.webhook_service}\""
}

resource "google_monitoring_slo" "webhook_availability" {
  project             = var.project_id
  service             = google_monitoring_custom_service.webhooks.service_id
  slo_id              = "availability"
  display_name        = "Webhook answers that are not 5xx"
  goal                = var.slo.webhook_availability
  rolling_period_days = var.slo.rolling_period_days

  request_based_sli {
    good_total_ratio {
      # A 4xx is a correct answer (a forged or malformed delivery); only 5xx make the PSP retry.
      total_service_filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.webhook_run}"
      bad_service_filter   = "metric.type=\"run.googleapis.com/request_count\" AND ${local.webhook_run} AND metric.label.response_code_class=\"5xx\""
    }
  }
}

resource "google_monitoring_slo" "webhook_latency" {
  project             = var.project_id
  service             = google_monitoring_custom_service.webhooks.service_id
  slo_id              = "latency"
  display_name        = "Webhook answers within ${var.slo.webhook_latency_ms} ms"
  goal                = var.slo.webhook_latency
  rolling_period_days = var.slo.rolling_period_days

  request_based_sli {
    distribution_cut {
      distribution_filter = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.webhook_run}"
      range {
        min = 0
        max = var.slo.webhook_latency_ms
      }
    }
  }
}

resource "google_monitoring_slo" "renewals_on_time" {
  project             = var.project_id
  service             = google_monitoring_custom_service.renewals.service_id
  slo_id              = "billed-on-time"
  display_name        = "Renewals charged within ${var.slo.renewals_on_time_s} s of the period start"
  goal                = var.slo.renewals_on_time
  rolling_period_days = var.slo.rolling_period_days

  request_based_sli {
    distribution_cut {
      distribution_filter = "metric.type=\"${local.user}/renewal_first_charge_lateness\" AND resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"${var.renewals_service}\""
      range {
        min = 0
        max = var.slo.renewals_on_time_s
      }
    }
  }

  depends_on = [google_logging_metric.this]
}

# Fast burn of an SLO's error budget (10x over an hour): page before the month is lost.
resource "google_monitoring_alert_policy" "slo_burn" {
  for_each = {
    webhook_availability = google_monitoring_slo.webhook_availability.name
    webhook_latency      = google_monitoring_slo.webhook_latency.name
    renewals_on_time     = google_monitoring_slo.renewals_on_time.name
  }

  project               = var.project_id
  display_name          = "SLO burn rate: ${each.key}"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${each.key} burns its error budget 10x too fast"

    condition_threshold {
      filter          = "select_slo_burn_rate(\"${each.value}\", \"3600s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 10
      duration        = "0s"
    }
  }

  documentation {
    content   = "The SLO ${each.key} is spending its error budget ten times faster than it may. ${local.runbook}"
    mime_type = "text/markdown"
  }
}

# --- dashboard -----------------------------------------------------------------------------------

locals {
  charts = concat(
    [for name, m in local.log_metrics : {
      title   = name
      filter  = "metric.type=\"${local.user}/${name}\""
      aligner = try(m.value, null) == null ? "ALIGN_RATE" : "ALIGN_PERCENTILE_99"
      by      = [for l in keys(m.labels) : "metric.label.${l}" if contains(["psp", "status", "kind", "series_id"], l)]
    }],
    [
      { title = "dead letters (undelivered)", filter = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dlq_match}", aligner = "ALIGN_MAX", by = ["resource.label.subscription_id"] },
      { title = "oldest unacked message age (s)", filter = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"", aligner = "ALIGN_MAX", by = ["resource.label.subscription_id"] },
      { title = "function 5xx", filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run} AND metric.label.response_code_class=\"5xx\"", aligner = "ALIGN_RATE", by = ["resource.label.service_name"] },
      { title = "function p99 latency (ms)", filter = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run}", aligner = "ALIGN_PERCENTILE_99", by = ["resource.label.service_name"] },
    ],
  )
}

resource "google_monitoring_dashboard" "this" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Payments: webhooks, renewals, invoices, messaging"
    mosaicLayout = {
      columns = 12
      tiles = [for i, c in local.charts : {
        xPos   = (i % 2) * 6
        yPos   = floor(i / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = c.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = c.filter
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = c.aligner
                    crossSeriesReducer = c.aligner == "ALIGN_RATE" ? "REDUCE_SUM" : "REDUCE_MAX"
                    groupByFields      = c.by
                  }
                }
              }
            }]
          }
        }
      }]
    }
  })

  depends_on = [google_logging_metric.this]
}
