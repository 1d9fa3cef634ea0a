-- Benchmark reference only (benchmarks/bench_features.py): the four columns lifetimes'
-- summary_data_from_transaction_data computes (frequency, recency, T, monetary_value, same conventions as
-- clv_platform/lib/sql/customer_features.sql), and nothing else, in DuckDB SQL. It puts the two engines side by
-- side on the same task; customer_features computes 28 columns, which needs orders and an ordered pass over
-- each customer's purchase days (gaps), where these four need neither.
-- Parameters: $as_of (DATE), $time_unit (DOUBLE days per time unit); {source}: the lines table.
WITH purchase_days AS (
    SELECT customer_id, CAST(order_ts AS DATE) AS d, CAST(sum(amount) AS DOUBLE) AS gross
    FROM {source}
    WHERE quantity > 0 AND order_ts < CAST($as_of AS DATE) + INTERVAL 1 DAY
    GROUP BY customer_id, CAST(order_ts AS DATE)
)
SELECT
    customer_id,
    count(*) - 1 AS frequency,
    CAST(max(d) - min(d) AS DOUBLE) / $time_unit AS recency,
    CAST(CAST($as_of AS DATE) - min(d) AS DOUBLE) / $time_unit AS T,
    -- mean gross per repeat purchase day: everything but the first day
    CASE WHEN count(*) > 1 THEN (sum(gross) - arg_min(gross, d)) / (count(*) - 1) ELSE 0.0 END AS monetary_value
FROM purchase_days
GROUP BY customer_id
ORDER BY customer_id
