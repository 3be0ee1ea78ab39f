-- Monthly recurring revenue per month and currency, in minor units, net of tax: the subtotals of the
-- subscription invoices that were not voided, by the month their billing period starts. A period
-- shorter than 28 days (weekly, daily plans) counts whole in its month, so a month sums its weekly
-- invoices; a period of n >= 1 months (monthly, quarterly, yearly) is spread over its n months with
-- integer division, the remainder in the first month, so the months add up to the invoice exactly.
WITH invoices AS (
  SELECT
    invoice_id,
    subscription_id,
    subtotal.amount AS amount,
    subtotal.currency AS currency,
    DATE_TRUNC(DATE(period_start), MONTH) AS first_month,
    IF(
      DATE_DIFF(DATE(period_end), DATE(period_start), DAY) < 28,
      1,
      GREATEST(DATE_DIFF(DATE(period_end), DATE(period_start), MONTH), 1)
    ) AS months,
    ROW_NUMBER() OVER (PARTITION BY invoice_id ORDER BY publish_time) AS copy
  FROM `${dataset}.invoice_events`
  WHERE event_type = 'invoice.finalized'
    AND subscription_id IS NOT NULL
    AND period_start IS NOT NULL
    AND period_end IS NOT NULL
),
voided AS (
  SELECT DISTINCT invoice_id
  FROM `${dataset}.invoice_events`
  WHERE event_type = 'invoice.voided'
),
spread AS (
  SELECT
    i.subscription_id,
    i.currency,
    -- The CAST is a no-op in BigQuery; DuckDB's date + interval is a TIMESTAMP.
    CAST(DATE_ADD(i.first_month, INTERVAL k MONTH) AS DATE) AS month,
    DIV(i.amount, i.months) + IF(k = 0, MOD(i.amount, i.months), 0) AS amount
  FROM invoices AS i
  CROSS JOIN UNNEST(GENERATE_ARRAY(0, i.months - 1)) AS k
  WHERE i.copy = 1
    AND i.invoice_id NOT IN (SELECT invoice_id FROM voided)
)
SELECT
  month,
  currency,
  SUM(amount) AS mrr,
  COUNT(DISTINCT subscription_id) AS subscriptions
FROM spread
GROUP BY month, currency
