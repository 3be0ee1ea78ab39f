-- Canonical events that came in through PSP webhooks, per day and PSP (synchronous charge results
-- carry no psp_event_id). `notifications` counts distinct PSP notification ids.
SELECT
  DATE(occurred_at) AS day,
  psp,
  COUNT(*) AS events,
  COUNT(DISTINCT psp_event_id) AS notifications
FROM (
  SELECT
    occurred_at,
    psp,
    psp_event_id,
    ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY publish_time) AS copy
  FROM `${dataset}.payment_events`
  WHERE psp_event_id IS NOT NULL
)
WHERE copy = 1
GROUP BY day, psp
