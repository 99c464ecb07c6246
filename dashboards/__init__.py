"""Streamlit dashboards reading the Parquet warehouse; actions go through om_core services."""
