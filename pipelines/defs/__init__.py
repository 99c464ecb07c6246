"""One sub-package per domain (staging, kpis, demand, forecasting, reorder, recommendations), each with
its assets and checks; `load_from_defs_folder` discovers them."""
