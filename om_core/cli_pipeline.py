"""`storeom pipeline run [--select SEL] [--as-of YYYY-MM-DD]`: materialize the Dagster assets in-process.

Imports `pipelines` (and dagster) only when the command runs: om_core imports nothing else from this repo.
Prints JSON: per asset its status and row count, per check its result and metadata. Exits 1 when a
blocking check fails (or a step fails).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date

import click

from om_core.config import get_settings


def run_pipeline(select: str = "*", as_of: str | None = None) -> tuple[dict, int]:
    settings = get_settings()
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.resources import default_resources

    definitions = defs()
    if "," in select:  # a plain list of asset names
        select = " or ".join(f"key:{name.strip()}" for name in select.split(",") if name.strip())
    assets = list(definitions.assets or []) + list(definitions.asset_checks or [])
    with dg.instance_for_test() if os.environ.get("STOREOM_PIPELINE_EPHEMERAL") else dg.DagsterInstance.get() as instance:
        result = dg.materialize(assets, resources=default_resources(as_of=as_of), selection=select, instance=instance,
                                raise_on_error=False)
        report: dict = {"as_of": as_of, "success": result.success, "assets": {}, "checks": []}
        for event in result.get_asset_materialization_events():
            md = event.materialization.metadata
            report["assets"][event.asset_key.to_user_string()] = {
                "status": "materialized", "rows": md["dagster/row_count"].value if "dagster/row_count" in md else None,
                "as_of": md["as_of"].value if "as_of" in md else None}
        for event in result.all_events:
            if event.event_type_value == "STEP_FAILURE":
                report["assets"].setdefault(event.step_key, {"status": "failed"})
            if event.event_type_value == "STEP_SKIPPED":
                report["assets"].setdefault(event.step_key, {"status": "skipped"})
        blocking_failed = False
        blocking = {spec.key for c in (definitions.asset_checks or []) for spec in c.check_specs if spec.blocking}
        for ev in result.get_asset_check_evaluations():
            is_blocking = ev.asset_check_key in blocking
            report["checks"].append({"asset": ev.asset_key.to_user_string(), "check": ev.check_name, "passed": ev.passed,
                                     "blocking": is_blocking, "metadata": {k: v.value for k, v in ev.metadata.items()}})
            blocking_failed |= is_blocking and not ev.passed
    return report, 1 if (blocking_failed or not result.success) else 0


@click.group("pipeline")
def pipeline_group() -> None:
    """The analytics pipelines (Dagster): staging tables, daily demand and KPI marts in STOREOM_HOME/warehouse."""


@pipeline_group.command("run")
@click.option("--select", "select", default="*", show_default=True, help="Dagster asset selection ('+key:kpi_sales', 'group:kpis', 'key:a or key:b') or a comma-separated list of asset names.")
@click.option("--as-of", "as_of", default=None, help="Last day (YYYY-MM-DD) the pipelines see; default: the day of the latest order.")
def run_command(select: str, as_of: str | None) -> None:
    """Materialize the selected assets in-process (no webserver) and print what happened as JSON."""
    if as_of is not None:
        try:
            date.fromisoformat(as_of)
        except ValueError:
            click.echo(f"error [validation_error]: --as-of must be YYYY-MM-DD, got {as_of!r}", err=True)
            sys.exit(1)
    report, code = run_pipeline(select, as_of)
    click.echo(json.dumps(report, indent=2, default=str))
    sys.exit(code)
