"""Bad-input corpus for the ingestion (see cases.py)."""
