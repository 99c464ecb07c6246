"""Dagster definitions: assets, checks, resources and automation over the core's database."""
