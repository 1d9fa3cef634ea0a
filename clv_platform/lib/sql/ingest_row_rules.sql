-- Row rules of one landing file (temp table _landing: source_line + the raw text columns).
-- One output row per input row, in file order: source_line, the raw text columns, the typed values and `reasons`, a comma-separated list of
-- reason codes ('' = valid row). Parameters: $partition_date DATE, $now TIMESTAMP, $check_returns BOOLEAN,
-- vocabularies $categories/$channels/$countries (VARCHAR[]), plausibility limits $max_quantity, $max_unit_price.
-- Known orders of earlier partitions come from the temp table _prior_orders(order_id, customer_id).
-- Blank test: coalesce(trim(x), '') = '' costs a trim per value, so values that start with a printable ASCII
-- character other than space (x >= '!' AND x < chr(127): trim cannot empty them) skip the trim.
WITH typed AS (
    SELECT
        l.*,
        -- integers must be written canonically (TRY_CAST alone would accept '2.5' as 3): round trip
        CASE WHEN CAST(TRY_CAST(line_number AS INTEGER) AS VARCHAR) = line_number
             THEN TRY_CAST(line_number AS INTEGER) END AS t_line_number,
        try_strptime(order_ts, '%Y-%m-%dT%H:%M:%S') AS t_order_ts,
        CASE WHEN CAST(TRY_CAST(quantity AS INTEGER) AS VARCHAR) = quantity
             THEN TRY_CAST(quantity AS INTEGER) END AS t_quantity,
        TRY_CAST(CASE WHEN regexp_full_match(unit_price, '-?[0-9]{1,12}(\.[0-9]{1,6})?') THEN unit_price END
                 AS DECIMAL(18, 6)) AS t_unit_price,
        (CASE WHEN order_id >= '!' AND order_id < chr(127) THEN false ELSE coalesce(trim(order_id), '') = '' END) AS no_order_id,
        (CASE WHEN line_number >= '!' AND line_number < chr(127) THEN false ELSE coalesce(trim(line_number), '') = '' END) AS no_line_number,
        (CASE WHEN customer_id >= '!' AND customer_id < chr(127) THEN false ELSE coalesce(trim(customer_id), '') = '' END) AS no_customer_id,
        (CASE WHEN original_order_id >= '!' AND original_order_id < chr(127) THEN false ELSE coalesce(trim(original_order_id), '') = '' END) AS no_original
    FROM _landing AS l
),
-- the CTEs below read _landing directly so that `typed` is used once and never materialised
returns AS (
    SELECT DISTINCT original_order_id, customer_id
    FROM _landing
    WHERE $check_returns AND starts_with(quantity, '-') AND (original_order_id >= '!' AND original_order_id < chr(127) OR trim(original_order_id) <> '')
      AND (customer_id >= '!' AND customer_id < chr(127) OR trim(customer_id) <> '')
),
known_returns AS (
    SELECT r.original_order_id, r.customer_id
    FROM returns AS r
    WHERE EXISTS (SELECT 1 FROM _landing AS t
                  WHERE t.order_id = r.original_order_id AND t.customer_id = r.customer_id
                    AND TRY_CAST(t.quantity AS INTEGER) > 0)
       OR EXISTS (SELECT 1 FROM _prior_orders AS p
                  WHERE p.order_id = r.original_order_id AND p.customer_id = r.customer_id)
),
repeated_hashes AS (
    -- cheap pre-filter: 64-bit hashes of (order_id, line_number) seen more than once, a superset of the repeated
    -- keys (a hash collision only adds a candidate, which first_lines then checks exactly)
    SELECT hash(order_id, line_number) AS h
    FROM _landing
    WHERE (order_id >= '!' AND order_id < chr(127) OR trim(order_id) <> '') AND (line_number >= '!' AND line_number < chr(127) OR trim(line_number) <> '')
    GROUP BY h
    HAVING count(*) > 1
),
first_lines AS (
    -- (order_id, line_number) keys seen more than once: the first line keeps them, later ones are duplicates
    SELECT order_id, line_number, min(source_line) AS first_line
    FROM _landing
    WHERE (order_id >= '!' AND order_id < chr(127) OR trim(order_id) <> '') AND (line_number >= '!' AND line_number < chr(127) OR trim(line_number) <> '')
      AND hash(order_id, line_number) IN (SELECT h FROM repeated_hashes)
    GROUP BY order_id, line_number
    HAVING count(*) > 1
),
ruled AS (
    SELECT
        t.*,
        f.first_line IS NOT NULL AND t.source_line > f.first_line AS is_duplicate,
        k.original_order_id IS NOT NULL AS return_known
    FROM typed AS t
    LEFT JOIN first_lines AS f ON f.order_id = t.order_id AND f.line_number = t.line_number
    LEFT JOIN known_returns AS k
        ON t.t_quantity < 0 AND k.original_order_id = t.original_order_id AND k.customer_id = t.customer_id
)
SELECT
    source_line,
    order_id, line_number, customer_id, order_ts, category, quantity, unit_price, channel, country, original_order_id,
    t_line_number, t_order_ts, t_quantity, t_unit_price,
    concat_ws(',',
        CASE WHEN no_order_id THEN 'missing_order_id' END,
        CASE WHEN no_line_number THEN 'missing_line_number'
             WHEN t_line_number IS NULL OR t_line_number < 1 THEN 'bad_line_number' END,
        CASE WHEN no_customer_id THEN 'missing_customer_id' END,
        CASE WHEN (CASE WHEN order_ts >= '!' AND order_ts < chr(127) THEN false ELSE coalesce(trim(order_ts), '') = '' END) THEN 'missing_timestamp'
             WHEN t_order_ts IS NULL THEN 'bad_timestamp'
             WHEN CAST(t_order_ts AS DATE) <> $partition_date THEN 'ts_outside_partition_day' END,
        CASE WHEN t_order_ts > $now THEN 'ts_in_future' END,
        CASE WHEN NOT coalesce(list_contains($categories, category), false) THEN 'unknown_category' END,
        CASE WHEN (CASE WHEN quantity >= '!' AND quantity < chr(127) THEN false ELSE coalesce(trim(quantity), '') = '' END) THEN 'missing_quantity'
             WHEN t_quantity IS NULL THEN 'bad_quantity'
             WHEN t_quantity = 0 THEN 'zero_quantity'
             WHEN abs(t_quantity) > $max_quantity THEN 'implausible_quantity' END,
        CASE WHEN (CASE WHEN unit_price >= '!' AND unit_price < chr(127) THEN false ELSE coalesce(trim(unit_price), '') = '' END) THEN 'missing_unit_price'
             WHEN t_unit_price IS NULL THEN 'bad_unit_price'
             WHEN t_unit_price < 0 THEN 'negative_unit_price'
             WHEN t_unit_price > $max_unit_price THEN 'implausible_unit_price' END,
        CASE WHEN NOT coalesce(list_contains($channels, channel), false) THEN 'unknown_channel' END,
        CASE WHEN NOT coalesce(list_contains($countries, country), false) THEN 'unknown_country' END,
        CASE WHEN t_quantity < 0 AND no_original THEN 'return_without_original_order'
             WHEN t_quantity < 0 AND $check_returns AND NOT no_customer_id AND NOT return_known
                 THEN 'return_without_known_order'
             WHEN t_quantity > 0 AND NOT no_original THEN 'original_order_on_sale' END,
        CASE WHEN is_duplicate THEN 'duplicate_line' END
    ) AS reasons
FROM ruled
ORDER BY source_line
