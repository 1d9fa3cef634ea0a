-- Customer features as of a date: one row per customer whose first purchase day is on or before $as_of.
-- Only lines dated on or before $as_of are read, so training (as of a cutoff) and scoring (as of the latest
-- day) use the same query and nothing from after the as-of date can leak in.
--
-- Parameters: $as_of (DATE), $time_unit (DOUBLE, days per time unit of recency / T).
-- Source: a table or view with customer_id, order_id, order_ts, amount, quantity, category, channel,
-- country (its name is formatted in by clv_platform.lib.features after validating it as an identifier).
--
-- Conventions (lifetimes): a purchase line is a line with quantity > 0; return lines (quantity < 0) never
-- make a purchase. A purchase day is a calendar day with at least one purchase line (same-day orders merge).
-- frequency = purchase days - 1; recency = last - first purchase day; T = $as_of - first purchase day
-- (recency and T in time units); monetary_value = mean gross purchase amount per repeat purchase day
-- (0 when frequency = 0). Money columns other than gross ones are net of returns.
WITH lines AS (
    SELECT customer_id, order_id, CAST(order_ts AS DATE) AS d, amount, quantity, category, channel, country
    FROM {source}
    WHERE order_ts < CAST($as_of AS DATE) + INTERVAL 1 DAY
),
orders AS (   -- one row per order (an order may hold purchase and return lines)
    SELECT
        customer_id,
        order_id,
        min(d) AS d,
        bool_or(quantity > 0) AS is_purchase,
        coalesce(sum(amount) FILTER (WHERE quantity > 0), 0) AS gross,
        coalesce(-sum(amount) FILTER (WHERE quantity < 0), 0) AS returned,
        sum(amount) AS net,
        count(*) FILTER (WHERE quantity > 0) AS n_lines,
        coalesce(sum(quantity) FILTER (WHERE quantity > 0), 0) AS items,
        min(channel) FILTER (WHERE quantity > 0) AS channel,
        min(country) AS country
    FROM lines
    GROUP BY customer_id, order_id
),
days AS (     -- one row per purchase day; gap = days since the previous purchase day (NULL on the first)
    SELECT
        customer_id,
        d,
        sum(gross) AS day_gross,
        d - lag(d) OVER (PARTITION BY customer_id ORDER BY d) AS gap
    FROM orders
    WHERE is_purchase
    GROUP BY customer_id, d
),
per_day AS (
    SELECT
        customer_id,
        min(d) AS first_day,
        max(d) AS last_day,
        count(*) - 1 AS frequency,
        coalesce(sum(day_gross) FILTER (WHERE gap IS NOT NULL), 0) AS repeat_gross,
        avg(gap) AS inter_purchase_days_mean,
        stddev_samp(gap) AS inter_purchase_days_std
    FROM days
    GROUP BY customer_id
),
per_order AS (
    SELECT
        customer_id,
        count(*) FILTER (WHERE is_purchase) AS orders,
        sum(net) AS total_spend,
        sum(gross) AS gross_spend,
        sum(returned) AS returned_spend,
        avg(gross) FILTER (WHERE is_purchase) AS avg_order_value,
        stddev_samp(gross) FILTER (WHERE is_purchase) AS avg_order_value_std,
        coalesce(sum(net) FILTER (WHERE d > CAST($as_of AS DATE) - 90), 0) AS spend_last_90d,
        coalesce(sum(net) FILTER (WHERE d > CAST($as_of AS DATE) - 180 AND d <= CAST($as_of AS DATE) - 90), 0)
            AS spend_prev_90d,
        avg(CAST(channel = 'web' AS DOUBLE)) FILTER (WHERE is_purchase) AS channel_share_web,
        avg(CAST(channel = 'app' AS DOUBLE)) FILTER (WHERE is_purchase) AS channel_share_app,
        avg(CAST(channel = 'store' AS DOUBLE)) FILTER (WHERE is_purchase) AS channel_share_store,
        avg(CAST(channel = 'phone' AS DOUBLE)) FILTER (WHERE is_purchase) AS channel_share_phone,
        avg(CAST(isodow(d) >= 6 AS DOUBLE)) FILTER (WHERE is_purchase) AS weekend_share,
        avg(items) FILTER (WHERE is_purchase) AS avg_basket_size,
        avg(n_lines) FILTER (WHERE is_purchase) AS avg_lines_per_order
    FROM orders
    GROUP BY customer_id
),
per_category AS (
    SELECT customer_id, count(DISTINCT category) AS category_diversity
    FROM lines
    WHERE quantity > 0
    GROUP BY customer_id
),
per_country AS (  -- most frequent country over the customer's orders; ties go to the first name
    SELECT customer_id, first(country ORDER BY n DESC, country) AS country
    FROM (SELECT customer_id, country, count(*) AS n FROM orders GROUP BY customer_id, country)
    GROUP BY customer_id
)
SELECT
    p.customer_id,
    p.frequency,
    CAST(p.last_day - p.first_day AS DOUBLE) / $time_unit AS recency,
    CAST(CAST($as_of AS DATE) - p.first_day AS DOUBLE) / $time_unit AS T,
    CASE WHEN p.frequency > 0 THEN CAST(p.repeat_gross AS DOUBLE) / p.frequency ELSE 0.0 END AS monetary_value,
    o.orders,
    CAST(o.total_spend AS DOUBLE) AS total_spend,
    CAST(o.gross_spend AS DOUBLE) AS gross_spend,
    CAST(o.avg_order_value AS DOUBLE) AS avg_order_value,
    CAST(o.avg_order_value_std AS DOUBLE) AS avg_order_value_std,
    CAST(p.inter_purchase_days_mean AS DOUBLE) AS inter_purchase_days_mean,
    CAST(p.inter_purchase_days_std AS DOUBLE) AS inter_purchase_days_std,
    CAST($as_of AS DATE) - p.last_day AS days_since_last_order,
    CAST($as_of AS DATE) - p.first_day AS tenure_days,
    CAST(o.spend_last_90d AS DOUBLE) AS spend_last_90d,
    CAST(o.spend_prev_90d AS DOUBLE) AS spend_prev_90d,
    -- symmetric relative change in [-1, 1]; 0 when both windows are 0
    CASE WHEN abs(o.spend_last_90d) + abs(o.spend_prev_90d) > 0
         THEN CAST(o.spend_last_90d - o.spend_prev_90d AS DOUBLE) / CAST(abs(o.spend_last_90d) + abs(o.spend_prev_90d) AS DOUBLE)
         ELSE 0.0 END AS spend_trend,
    coalesce(c.category_diversity, 0) AS category_diversity,
    o.channel_share_web,
    o.channel_share_app,
    o.channel_share_store,
    o.channel_share_phone,
    CASE WHEN o.gross_spend > 0 THEN CAST(o.returned_spend AS DOUBLE) / CAST(o.gross_spend AS DOUBLE) ELSE 0.0 END
        AS return_rate,
    o.weekend_share,
    o.avg_basket_size,
    o.avg_lines_per_order,
    k.country,
    CAST($as_of AS DATE) AS as_of_date
FROM per_day AS p
JOIN per_order AS o USING (customer_id)
LEFT JOIN per_category AS c USING (customer_id)
LEFT JOIN per_country AS k USING (customer_id)
ORDER BY p.customer_id
