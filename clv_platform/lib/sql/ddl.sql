-- Tables of the warehouse (the only non-SELECT file here). Idempotent.
CREATE TABLE IF NOT EXISTS raw.transactions (
    partition_date DATE NOT NULL,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,          -- 1-based line in the file, header = line 1 for CSV
    order_id VARCHAR, line_number VARCHAR, customer_id VARCHAR, order_ts VARCHAR, category VARCHAR,
    quantity VARCHAR, unit_price VARCHAR, channel VARCHAR, country VARCHAR, original_order_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.rejected_transactions (
    partition_date DATE NOT NULL,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    reasons VARCHAR NOT NULL,             -- comma-separated reason codes
    order_id VARCHAR, line_number VARCHAR, customer_id VARCHAR, order_ts VARCHAR, category VARCHAR,
    quantity VARCHAR, unit_price VARCHAR, channel VARCHAR, country VARCHAR, original_order_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.load_audit (
    partition_date DATE PRIMARY KEY,
    source_file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    load_seconds DOUBLE NOT NULL
);
-- The last refusal of each day's file as a whole (a file-level problem); removed when the day loads.
CREATE TABLE IF NOT EXISTS raw.load_failures (
    partition_date DATE PRIMARY KEY,
    source_file VARCHAR NOT NULL,
    sha256 VARCHAR,                       -- of the refused file (NULL when it could not be read)
    problem VARCHAR NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS staging.transactions (
    partition_date DATE NOT NULL,
    order_id VARCHAR NOT NULL,
    line_number INTEGER NOT NULL,
    customer_id VARCHAR NOT NULL,
    order_ts TIMESTAMP NOT NULL,
    category VARCHAR,
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(18, 6) NOT NULL,
    amount DECIMAL(18, 2) NOT NULL,       -- round(quantity * unit_price, 2); negative on returns
    channel VARCHAR,
    country VARCHAR,
    original_order_id VARCHAR,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS staging.validation_results (
    partition_date DATE NOT NULL,
    expectation VARCHAR NOT NULL,
    column_name VARCHAR,
    success BOOLEAN NOT NULL,
    element_count BIGINT,
    unexpected_count BIGINT,
    checked_at TIMESTAMP NOT NULL
);
