-- Customer features as of a date: one row per customer whose first purchase day is on or before $as_of.
-- Only lines dated on or before $as_of are read, so training (as of a cutoff) and scoring (as of the latest
-- day) use the same query and nothing from after the as-of date can leak in.
--
-- Parameters: $as_of (DATE), $time_unit (DOUBLE, days per time unit of recency and T).
-- Source: a table or view with customer_id, order_id, order_ts, amount, quantity, category, channel,
-- country (its name is formatted in by clv_platform.lib.features after validating it as an identifier).
--
-- Conventions (lifetimes): a purchase line is a line with quantity > 0; return lines (quantity < 0) never
-- make a purchase. A purchase order has at least one purchase line; a purchase day is a calendar day with
-- at least one purchase order (same-day orders merge). frequency = purchase days - 1; recency = last -
-- first purchase day; T = $as_of - first purchase day (recency and T in time units); monetary_value = mean
-- gross purchase amount per repeat purchase day (0 when frequency = 0). Gross = purchase lines only; net
-- (total_spend, spend windows) = all lines, returns negative. Amounts are summed per order as DOUBLE (faster
-- than DECIMAL); the customer's money sums are rounded back to cents, which they are exactly, so that a total
-- of 1590.06 is 1590.06 and not 1590.0600000000002, and the means divide exact sums.
--
-- Plan (one pass over the lines, chosen for speed): lines -> orders (hash aggregate) -> a window over each
-- customer's purchase orders sorted by day (gap to the previous purchase order, first purchase day) ->
-- customers (hash aggregate). Consecutive distinct purchase days differ by exactly the non-zero gaps
-- between consecutive purchase orders, so purchase days, inter-purchase gaps and repeat-day spend need no
-- separate day-level aggregate.
WITH orders AS (
    SELECT
        customer_id,
        order_id,
        CAST(min(order_ts) AS DATE) AS d,
        count_if(quantity > 0) AS n_lines,
        CAST(sum(CASE WHEN quantity > 0 THEN amount ELSE 0 END) AS DOUBLE) AS gross,
        CAST(sum(amount) AS DOUBLE) AS net,
        sum(CASE WHEN quantity > 0 THEN quantity ELSE 0 END) AS items,
        -- distinct categories as a bit set: the 63 most frequent categories up to $as_of get a bit each,
        -- any further ones share bit 63 (exact for up to 64 distinct categories)
        bit_or(CASE WHEN quantity > 0 THEN CAST(1 AS UBIGINT) << (coalesce(list_position(
            (SELECT list(category ORDER BY n DESC, category)[1:63]
             FROM (SELECT category, count(*) AS n FROM {source}
                   WHERE category IS NOT NULL AND order_ts < CAST($as_of AS DATE) + INTERVAL 1 DAY
                   GROUP BY category)),
            category), 64) - 1) ELSE CAST(0 AS UBIGINT) END) AS categories,
        -- channel as a small code that sorts like the name among the four known channels and the names
        -- between them (odd = web/app/store/phone, even = any other name), so min() over the code finds the
        -- same smallest channel name as min(channel) without comparing strings per line
        min(CASE channel WHEN 'app' THEN 1 WHEN 'phone' THEN 3 WHEN 'store' THEN 5 WHEN 'web' THEN 7
            ELSE 2 * (CAST(channel > 'app' AS TINYINT) + CAST(channel > 'phone' AS TINYINT)
                      + CAST(channel > 'store' AS TINYINT) + CAST(channel > 'web' AS TINYINT)) END) AS channel,
        min(country) AS country
    FROM {source}
    WHERE order_ts < CAST($as_of AS DATE) + INTERVAL 1 DAY
    GROUP BY customer_id, order_id
),
sequenced AS (
    SELECT
        *,
        n_lines > 0 AS is_purchase,
        CAST(round(gross * 100) AS BIGINT) AS gross_cents,   -- exact: gross is a sum of DECIMAL(18, 2) amounts
        d - lag(d) OVER w AS gap,             -- days since the previous purchase order (NULL on the first)
        first_value(d) OVER w AS first_day    -- first purchase day (for purchase orders)
    FROM orders
    WINDOW w AS (PARTITION BY customer_id, n_lines > 0 ORDER BY d)
),
customers AS (
    SELECT
        customer_id,
        min(first_day) FILTER (WHERE is_purchase) AS first_day,
        max(d) FILTER (WHERE is_purchase) AS last_day,
        -- counts as BIGINT: count_if() is HUGEINT, which reaches pandas (and the snapshot, the API) as a float
        CAST(count_if(is_purchase AND coalesce(gap, 1) > 0) - 1 AS BIGINT) AS frequency,
        round(sum(CASE WHEN is_purchase AND d > first_day THEN gross ELSE 0 END), 2) AS repeat_gross,
        avg(CASE WHEN is_purchase AND gap > 0 THEN gap END) AS inter_purchase_days_mean,
        -- the two spreads from sums of whole numbers (days; cents), not stddev_samp: its floating-point state
        -- merged across threads in whatever order they finish differs in the last bits from run to run, and that
        -- was enough to change LightGBM's trees, so training on the same data gave other models. The sums of
        -- squares are DOUBLE (cheaper than HUGEINT) and exact in any order below 2^53: gaps always, cents unless a
        -- customer's squared order values add up to over 9e11 dollars^2 (say 90 orders of $100,000)
        count_if(is_purchase AND gap > 0) AS n_gaps,
        sum(CASE WHEN is_purchase AND gap > 0 THEN gap END) AS gap_sum,
        sum(CASE WHEN is_purchase AND gap > 0 THEN CAST(gap AS DOUBLE) * gap END) AS gap_sum_sq,
        CAST(count_if(is_purchase) AS BIGINT) AS orders,
        round(sum(net), 2) AS total_spend,
        round(sum(gross), 2) AS gross_spend,
        sum(CASE WHEN is_purchase THEN gross_cents END) AS gross_cents_sum,
        sum(CASE WHEN is_purchase THEN CAST(gross_cents AS DOUBLE) * gross_cents END) AS gross_cents_sum_sq,
        round(sum(CASE WHEN d > CAST($as_of AS DATE) - 90 THEN net ELSE 0 END), 2) AS spend_last_90d,
        round(sum(CASE WHEN d > CAST($as_of AS DATE) - 180 AND d <= CAST($as_of AS DATE) - 90 THEN net ELSE 0 END), 2)
            AS spend_prev_90d,
        count_if(is_purchase AND channel = 7) AS n_web,
        count_if(is_purchase AND channel = 1) AS n_app,
        count_if(is_purchase AND channel = 5) AS n_store,
        count_if(is_purchase AND channel = 3) AS n_phone,
        count_if(is_purchase AND isodow(d) >= 6) AS n_weekend,
        sum(items) AS items,
        sum(n_lines) AS n_lines,
        bit_count(bit_or(categories)) AS category_diversity,
        -- country of the latest order that names one (same-day ties go to the last name in sort order): a
        -- plain aggregate, where mode() would need a second pass over the orders
        max({'d': d, 'country': country}) FILTER (WHERE country IS NOT NULL).country AS country
    FROM sequenced
    GROUP BY customer_id
    HAVING bool_or(is_purchase)
)
SELECT
    customer_id,
    frequency,
    CAST(last_day - first_day AS DOUBLE) / $time_unit AS recency,
    CAST(CAST($as_of AS DATE) - first_day AS DOUBLE) / $time_unit AS T,
    CASE WHEN frequency > 0 THEN repeat_gross / frequency ELSE 0.0 END AS monetary_value,
    orders,
    total_spend,
    gross_spend,
    gross_spend / orders AS avg_order_value,     -- orders without a purchase line have gross 0
    -- sample standard deviations: sqrt((n * sum(x^2) - sum(x)^2) / (n * (n - 1))), the numerator exact
    CASE WHEN orders > 1
         THEN sqrt(CAST(orders * CAST(gross_cents_sum_sq AS HUGEINT) - gross_cents_sum * gross_cents_sum AS DOUBLE)
                   / (orders * (orders - 1))) / 100 END AS avg_order_value_std,
    inter_purchase_days_mean,
    CASE WHEN n_gaps > 1
         THEN sqrt(CAST(n_gaps * CAST(gap_sum_sq AS HUGEINT) - gap_sum * gap_sum AS DOUBLE) / (n_gaps * (n_gaps - 1)))
         END AS inter_purchase_days_std,
    CAST($as_of AS DATE) - last_day AS days_since_last_order,
    CAST($as_of AS DATE) - first_day AS tenure_days,
    spend_last_90d,
    spend_prev_90d,
    -- symmetric relative change in [-1, 1]; 0 when both windows are 0
    CASE WHEN abs(spend_last_90d) + abs(spend_prev_90d) > 0
         THEN (spend_last_90d - spend_prev_90d) / (abs(spend_last_90d) + abs(spend_prev_90d))
         ELSE 0.0 END AS spend_trend,
    category_diversity,
    n_web / orders AS channel_share_web,
    n_app / orders AS channel_share_app,
    n_store / orders AS channel_share_store,
    n_phone / orders AS channel_share_phone,
    CASE WHEN gross_spend > 0 THEN (gross_spend - total_spend) / gross_spend ELSE 0.0 END AS return_rate,
    n_weekend / orders AS weekend_share,
    items / orders AS avg_basket_size,
    n_lines / orders AS avg_lines_per_order,
    country,
    CAST($as_of AS DATE) AS as_of_date
FROM customers
ORDER BY customer_id
