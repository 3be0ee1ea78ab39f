-- Declined payments per day, PSP and canonical decline category (decline_code today), with the hard
-- declines (not retryable: dunning stops) among them. Rows are deduplicated by event_id first: a
-- BigQuery subscription delivers at least once and a fact can be reported by the webhook and the
-- collector alike (same event_id).
SELECT
  DATE(occurred_at) AS day,
  psp,
  COALESCE(decline_code, 'unknown') AS category,
  COUNT(*) AS declines,
  COUNTIF(NOT retryable) AS hard_declines
FROM (
  SELECT
    occurred_at,
    psp,
    decline_code,
    retryable,
    ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY publish_time) AS copy
  FROM `${dataset}.payment_events`
  WHERE event_type = 'payment.failed'
)
WHERE copy = 1
GROUP BY day, psp, category
