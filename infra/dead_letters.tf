# Dead-letter access for the functions whose topology entry says `dead_letters: true` (the operator
# console): it lists the subscriptions, reads each "<name>-dlq" pull subscription's letters and replays
# them (republishing is covered by the function's `publishes`). Nothing here names a function.

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  # Pull and acknowledge on the dead-letter subscriptions only, not on the push subscriptions they back.
  for_each = local.dead_letter_grants

  project      = var.project_id
  subscription = module.subscription[each.value.subscription].dead_letter_subscription
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${module.function[each.value.function].service_account_email}"
}

resource "google_project_iam_member" "dead_letter_lister" {
  # Listing subscriptions (and reading a push subscription's topic, the replay's destination) exists only
  # at project level; roles/pubsub.viewer is metadata only: no pull, no publish, no message data.
  for_each = toset([for k, f in local.functions : k if f.dead_letters])

  project = var.project_id
  role    = "roles/pubsub.viewer"
  member  = "serviceAccount:${module.function[each.value].service_account_email}"
}
