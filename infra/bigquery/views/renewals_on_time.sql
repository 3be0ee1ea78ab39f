-- Renewals (automatically collected subscription invoices) per due day and currency: paid on time
-- (within one day of the period start, i.e. before the first dunning retry), paid late, or unpaid.
WITH renewals AS (
  SELECT
    invoice_id,
    total.currency AS currency,
    COALESCE(period_start, finalized_at) AS due_at,
    ROW_NUMBER() OVER (PARTITION BY invoice_id ORDER BY publish_time) AS copy
  FROM `${dataset}.invoice_events`
  WHERE event_type = 'invoice.finalized'
    AND subscription_id IS NOT NULL
    AND collection = 'charge_automatically'
),
paid AS (
  SELECT invoice_id, MIN(paid_at) AS paid_at
  FROM `${dataset}.invoice_events`
  WHERE event_type = 'invoice.paid'
  GROUP BY invoice_id
)
SELECT
  DATE(r.due_at) AS day,
  r.currency,
  COUNT(*) AS renewals,
  -- COALESCE: BigQuery's COUNTIF counts 0 for NULL conditions, DuckDB's COUNT_IF can return NULL.
  COUNTIF(COALESCE(p.paid_at <= TIMESTAMP_ADD(r.due_at, INTERVAL 1 DAY), FALSE)) AS paid_on_time,
  COUNTIF(COALESCE(p.paid_at > TIMESTAMP_ADD(r.due_at, INTERVAL 1 DAY), FALSE)) AS paid_late,
  COUNTIF(p.paid_at IS NULL) AS unpaid
FROM renewals AS r
LEFT JOIN paid AS p ON p.invoice_id = r.invoice_id
WHERE r.copy = 1
GROUP BY day, r.currency
