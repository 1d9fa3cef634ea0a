-- Macros of the ingest rules (ingest_row_rules.sql, ingest_cross_row_rules.sql), created on the connection before
-- they run.
-- is_blank(x): NULL, empty or only whitespace. coalesce(trim(x), '') = '' costs a trim per value, so values that
-- start with a printable ASCII character other than space (x >= '!' AND x < chr(127): trim cannot empty them)
-- skip the trim. A macro is expanded where it is used: the plan is the same as the inline expression.
CREATE OR REPLACE TEMP MACRO is_blank(x) AS
    CASE WHEN x >= '!' AND x < chr(127) THEN false ELSE coalesce(trim(x), '') = '' END;
-- in_vocabulary(x, allowed, any_value): x is one of `allowed` (VARCHAR[]), or any non-blank x when any_value.
CREATE OR REPLACE TEMP MACRO in_vocabulary(x, allowed, any_value) AS
    coalesce(list_contains(CAST(allowed AS VARCHAR[]), x), false) OR (any_value AND NOT is_blank(x));
-- has_outer_space(x): a non-blank x with leading or trailing whitespace (same fast path as is_blank: a value
-- whose first and last characters are printable ASCII other than space has none).
CREATE OR REPLACE TEMP MACRO has_outer_space(x) AS
    CASE WHEN x >= '!' AND x < chr(127) AND right(x, 1) >= '!' AND right(x, 1) < chr(127) THEN false
         ELSE NOT is_blank(x) AND trim(x) <> x END;
-- bad_id(x, max_chars): an id with a control character (tab, line break, NUL, escape...), an invisible format
-- character (zero-width space, BOM, direction marks: Unicode Cf; "C1" + U+200B would be another customer than
-- "C1" that looks the same everywhere) or longer than max_chars.
CREATE OR REPLACE TEMP MACRO bad_id(x, max_chars) AS
    coalesce(length(x) > max_chars OR regexp_matches(x, '[[:cntrl:]\p{Cf}]'), false);
