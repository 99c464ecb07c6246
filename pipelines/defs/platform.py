"""Resources (the core's database, the Parquet warehouse) and automation (the daily schedule)."""

from __future__ import annotations

import dagster as dg

from pipelines.resources import default_resources

daily_job = dg.define_asset_job("storeom_daily_job", selection=dg.AssetSelection.all(),
                                description="Rebuild staging, demand and KPI marts for the latest day.")
daily_schedule = dg.ScheduleDefinition(name="storeom_daily", job=daily_job, cron_schedule="30 2 * * *",
                                       execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)


@dg.definitions
def platform() -> dg.Definitions:
    return dg.Definitions(resources=default_resources(), jobs=[daily_job], schedules=[daily_schedule])
