-- Calibration/holdout set: the customer features as of the cutoff (customer_features.sql itself, embedded
-- below by clv_platform.lib.features with $as_of = the cutoff) plus what each of those customers did in the
-- horizon (cutoff, cutoff + $horizon_days]. Customers first seen after the cutoff are not in it.
--
-- Parameters: $as_of (DATE, the cutoff), $horizon_days (INTEGER), $time_unit (DOUBLE days per time unit).
-- frequency_holdout = purchase days (days with a line of quantity > 0) in the horizon;
-- spend_holdout = net amount (returns subtracted) in the horizon; duration_holdout = horizon in time units.
WITH calibration AS (
{customer_features}
),
holdout AS (
    SELECT
        customer_id,
        count(DISTINCT CAST(order_ts AS DATE)) FILTER (WHERE quantity > 0) AS frequency_holdout,
        sum(amount) AS spend_holdout
    FROM {source}
    WHERE order_ts >= CAST($as_of AS DATE) + INTERVAL 1 DAY
      AND order_ts < CAST($as_of AS DATE) + INTERVAL 1 DAY + to_days(CAST($horizon_days AS INTEGER))
    GROUP BY customer_id
)
SELECT
    calibration.*,
    coalesce(h.frequency_holdout, 0) AS frequency_holdout,
    CAST(coalesce(h.spend_holdout, 0) AS DOUBLE) AS spend_holdout,
    CAST($horizon_days AS DOUBLE) / $time_unit AS duration_holdout
FROM calibration
LEFT JOIN holdout AS h USING (customer_id)
ORDER BY calibration.customer_id
