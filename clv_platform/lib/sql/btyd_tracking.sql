-- Daily tracking of the calibration cohort (BTYD cumulative-tracking diagnostic).
-- Parameters: $cutoff (DATE: cohort = customers whose first purchase day is on or before it), $as_of (DATE: end).
-- Purchase days as in customer_features.sql: a calendar day with a line of quantity > 0 (same-day orders merge).
-- One row per day from the first purchase day to $as_of with new_customers (first purchase that day) and
-- repeat_purchases (the cohort's purchase days that day other than their first).
WITH days AS (
    SELECT DISTINCT customer_id, CAST(order_ts AS DATE) AS d
    FROM {source}
    WHERE quantity > 0 AND order_ts < CAST($as_of AS DATE) + INTERVAL 1 DAY
),
firsts AS (
    SELECT customer_id, min(d) AS first_day FROM days GROUP BY customer_id
    HAVING min(d) <= CAST($cutoff AS DATE)
),
per_day AS (
    SELECT d AS day,
           count(*) FILTER (WHERE d = f.first_day) AS new_customers,
           count(*) FILTER (WHERE d > f.first_day) AS repeat_purchases
    FROM days JOIN firsts AS f USING (customer_id)
    GROUP BY d
),
calendar AS (
    SELECT CAST(unnest(range(min(first_day), CAST($as_of AS DATE) + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS day
    FROM firsts
)
SELECT c.day, coalesce(p.new_customers, 0) AS new_customers, coalesce(p.repeat_purchases, 0) AS repeat_purchases
FROM calendar AS c LEFT JOIN per_day AS p USING (day)
ORDER BY c.day
