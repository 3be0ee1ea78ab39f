/**
 * Single Message Transform of the BigQuery export subscriptions: copies the envelope (the message
 * attributes) into the JSON body, because a BigQuery subscription maps only the body's fields to table
 * columns and the tables are partitioned on occurred_at. The attributes stay untouched and are also
 * written whole to the `attributes` column (write_metadata). The local store mirrors this function in
 * infra/local/analytics.py (row_from_message); a test runs both on the same messages.
 */
function envelopeToColumns(message, metadata) {
  const row = JSON.parse(message.data);
  const a = message.attributes || {};
  row.event_type = a.event_type;
  row.event_id = a.event_id;
  row.schema_version = parseInt(a.schema_version, 10);
  row.occurred_at = a.occurred_at;
  row.idempotency_key = a.idempotency_key;
  row.traceparent = a.traceparent === undefined ? null : a.traceparent;
  row.producer = a.producer === undefined ? null : a.producer;
  return { data: JSON.stringify(row), attributes: a };
}
