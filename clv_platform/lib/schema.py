"""The landing-file contract and the vocabularies the validation rules check against."""

import re

# Header of every landing file, in this order (CSV) or these column names (Parquet).
LANDING_COLUMNS = (
    "order_id",           # e.g. O000000123; shared by the lines of one order
    "line_number",        # 1.. within the order
    "customer_id",        # e.g. C0000042
    "order_ts",           # ISO-8601 local timestamp, inside the file's day
    "category",           # product category
    "quantity",           # integer; negative on a return line
    "unit_price",         # > = 0, up to 6 decimals; line amount = quantity * unit_price
    "channel",            # one of CHANNELS
    "country",            # one of COUNTRIES (ISO 3166 alpha-2)
    "original_order_id",  # empty, except on return lines: the order being returned
)

LANDING_FILE_RE = re.compile(r"^transactions_(\d{4}-\d{2}-\d{2})\.(csv|parquet)$")

CHANNELS = ("web", "app", "store", "phone")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "CA")
CATEGORIES = ("books", "music", "electronics", "home", "fashion", "beauty", "toys", "sports", "grocery")
