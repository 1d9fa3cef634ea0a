"""Pages of the dashboard; each module is a script that st.navigation runs (see dashboards/streamlit_app.py)."""
