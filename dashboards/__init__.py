"""Streamlit dashboard over the serving snapshot (run: `make serve-dashboard`)."""
