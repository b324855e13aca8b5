"""Streamlit front end (a separate process that calls the API over HTTP)."""
