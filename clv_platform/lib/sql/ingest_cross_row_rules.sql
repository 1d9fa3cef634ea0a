-- Row rules of one landing file that compare rows (view _landing: row_index in file order, the text columns,
-- the typed values and the row-rule `reasons` of ingest_row_rules.sql). One output row per affected line only:
-- row_index and `reasons`, the cross-row reason codes in REASONS order (appended to the line's row-rule
-- codes). Parameter: $check_returns
-- BOOLEAN. Known orders of earlier partitions come from the temp table _prior_orders(order_id, customer_id);
-- lines already loaded from other days' files from _other_day_lines(order_id, line_number).
-- Macro is_blank: ingest_macros.sql.
WITH returns AS (
    -- negative lines with an original_order_id (without one they are return_without_original_order) and a customer
    SELECT row_index, original_order_id, customer_id
    FROM _landing
    WHERE $check_returns AND t_quantity < 0 AND NOT is_blank(original_order_id)
      AND NOT is_blank(customer_id)
),
unknown_returns AS (
    -- the sale must be a line of this file that the row rules keep (a quarantined sale is not loaded)
    SELECT r.row_index
    FROM returns AS r
    WHERE NOT EXISTS (SELECT 1 FROM _landing AS t
                      WHERE t.order_id = r.original_order_id AND t.customer_id = r.customer_id
                        AND t.t_quantity > 0 AND t.reasons = '')
      AND NOT EXISTS (SELECT 1 FROM _prior_orders AS p
                      WHERE p.order_id = r.original_order_id AND p.customer_id = r.customer_id)
),
repeated_hashes AS (
    -- cheap pre-filter: 64-bit hashes of (order_id, line_number) seen more than once, a superset of the repeated
    -- keys (a hash collision only adds a candidate, which first_lines then checks exactly)
    SELECT hash(order_id, line_number) AS h
    FROM _landing
    WHERE NOT is_blank(order_id) AND NOT is_blank(line_number)
    GROUP BY h
    HAVING count(*) > 1
),
first_lines AS (
    -- (order_id, line_number) keys seen more than once: the first line keeps them, later ones are duplicates
    SELECT order_id, line_number, min(row_index) AS first_line
    FROM _landing
    WHERE NOT is_blank(order_id) AND NOT is_blank(line_number)
      AND hash(order_id, line_number) IN (SELECT h FROM repeated_hashes)
    GROUP BY order_id, line_number
    HAVING count(*) > 1
),
duplicates AS (
    SELECT l.row_index
    FROM _landing AS l
    JOIN first_lines AS f ON f.order_id = l.order_id AND f.line_number = l.line_number
    WHERE l.row_index > f.first_line
),
other_day_duplicates AS (
    SELECT l.row_index
    FROM _landing AS l
    JOIN _other_day_lines AS o ON o.order_id = l.order_id AND o.line_number = l.t_line_number
)
SELECT
    row_index,
    concat_ws(',',
        CASE WHEN bool_or(code = 1) THEN 'return_without_known_order' END,
        CASE WHEN bool_or(code = 2) THEN 'duplicate_line' END,
        CASE WHEN bool_or(code = 3) THEN 'duplicate_line_other_file' END
    ) AS reasons
FROM (SELECT row_index, 1 AS code FROM unknown_returns
      UNION ALL
      SELECT row_index, 2 FROM duplicates
      UNION ALL
      SELECT row_index, 3 FROM other_day_duplicates)
GROUP BY row_index
