-- Row rules of one landing file that need only the row itself, applied while the file is read (view _landing_source:
-- the landing columns as text, in file order). Output, in file order: the raw text columns, the typed values and
-- `reasons`, a comma-separated list of reason codes ('' = valid row). The rules that compare rows
-- (return_without_known_order, duplicate_line, duplicate_line_other_file: ingest_cross_row_rules.sql) append
-- their codes afterwards.
-- Parameters: $partition_date DATE, $now TIMESTAMP, vocabularies $categories/$channels/$countries (VARCHAR[]) with
-- $any_categories/$any_channels/$any_countries (BOOLEAN: any non-blank value is allowed), plausibility limits
-- $max_quantity, $max_unit_price. Macros is_blank, in_vocabulary: ingest_macros.sql.
WITH typed AS (
    SELECT
        s.*,
        -- integers must be written canonically (TRY_CAST alone would accept '2.5' as 3): round trip
        CASE WHEN CAST(TRY_CAST(line_number AS INTEGER) AS VARCHAR) = line_number
             THEN TRY_CAST(line_number AS INTEGER) END AS t_line_number,
        -- exactly YYYY-MM-DDTHH:MM:SS (strptime alone also takes single digits and leading spaces)
        CASE WHEN regexp_full_match(order_ts, '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}')
             THEN try_strptime(order_ts, '%Y-%m-%dT%H:%M:%S') END AS t_order_ts,
        CASE WHEN CAST(TRY_CAST(quantity AS BIGINT) AS VARCHAR) = quantity
             THEN TRY_CAST(quantity AS BIGINT) END AS t_quantity,
        TRY_CAST(CASE WHEN regexp_full_match(unit_price, '-?[0-9]{1,12}(\.[0-9]{1,6})?') THEN unit_price END
                 AS DECIMAL(18, 6)) AS t_unit_price,
        is_blank(original_order_id) AS no_original
    FROM _landing_source AS s
)
SELECT
    order_id, line_number, customer_id, order_ts, category, quantity, unit_price, channel, country, original_order_id,
    t_line_number, t_order_ts, t_quantity, t_unit_price,
    concat_ws(',',
        CASE WHEN is_blank(order_id) THEN 'missing_order_id' END,
        CASE WHEN is_blank(line_number) THEN 'missing_line_number'
             WHEN t_line_number IS NULL OR t_line_number < 1 THEN 'bad_line_number' END,
        CASE WHEN is_blank(customer_id) THEN 'missing_customer_id' END,
        -- ' C1' and 'C1' would be two customers (and two orders for the duplicate rules)
        CASE WHEN has_outer_space(order_id) OR has_outer_space(customer_id) OR has_outer_space(original_order_id)
             THEN 'id_with_spaces' END,
        -- a tab, line break, NUL... or a huge id breaks lookups (API, dashboard) and exports downstream
        CASE WHEN bad_id(order_id, $max_id_chars) OR bad_id(customer_id, $max_id_chars)
                  OR bad_id(original_order_id, $max_id_chars) THEN 'bad_id' END,
        CASE WHEN is_blank(order_ts) THEN 'missing_timestamp'
             WHEN t_order_ts IS NULL THEN 'bad_timestamp'
             WHEN CAST(t_order_ts AS DATE) <> $partition_date THEN 'ts_outside_partition_day' END,
        CASE WHEN t_order_ts > $now THEN 'ts_in_future' END,
        CASE WHEN NOT in_vocabulary(category, $categories, $any_categories) THEN 'unknown_category' END,
        CASE WHEN is_blank(quantity) THEN 'missing_quantity'
             WHEN t_quantity IS NULL THEN 'bad_quantity'
             WHEN t_quantity = 0 THEN 'zero_quantity'
             WHEN abs(t_quantity) > $max_quantity THEN 'implausible_quantity' END,
        CASE WHEN is_blank(unit_price) THEN 'missing_unit_price'
             WHEN t_unit_price IS NULL THEN 'bad_unit_price'
             WHEN t_unit_price < 0 THEN 'negative_unit_price'
             WHEN t_unit_price > $max_unit_price THEN 'implausible_unit_price' END,
        CASE WHEN NOT in_vocabulary(channel, $channels, $any_channels) THEN 'unknown_channel' END,
        CASE WHEN NOT in_vocabulary(country, $countries, $any_countries) THEN 'unknown_country' END,
        -- (a return with original_order_id may still be return_without_known_order: cross-row rules)
        CASE WHEN t_quantity < 0 AND no_original THEN 'return_without_original_order'
             WHEN t_quantity > 0 AND NOT no_original THEN 'original_order_on_sale' END
    ) AS reasons
FROM typed
