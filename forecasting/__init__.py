"""Pure functions on DataFrames: demand series, model selection, intervals, reorder policy,
recommendations. No database, no Dagster, no Streamlit."""
