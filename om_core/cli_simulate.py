"""`storeom simulate`: generate a retailer's history into the configured database (see om_core.simulator).

Registered on the `storeom` group by om_core.cli (`main.add_command(simulate)`); `storeom demo` runs it
with the defaults. Prints the simulation report as JSON; progress bars go to stderr.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import click

from om_core.config import get_settings


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.command("simulate")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="1 = the default store; order volume and customers grow with it, the catalogue more slowly.")
@click.option("--lines-target", type=click.IntRange(min=1), help="Size the run by order lines instead of --scale.")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same history.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), help="First simulated day (UTC).")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last simulated day (UTC) [default: yesterday].")
@click.option("--days", type=click.IntRange(min=1), help="Length of the period [default: 730, i.e. two years].")
@click.option("--fresh", is_flag=True, help="Start from an empty database (drops whatever it holds).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def simulate(scale: float, lines_target: int | None, seed: int, start: datetime | None, end: datetime | None, days: int | None,
             fresh: bool, no_progress: bool) -> None:
    """Simulate a retailer (2 warehouses, 8 stores, web/app/marketplace/POS) through the core's services."""
    from om_core.db import Database
    from om_core.schema import downgrade, upgrade
    from om_core.simulator.config import SimulationConfig
    from om_core.simulator.run import simulate as run_simulation

    if start is not None and end is not None and days is not None:
        raise click.UsageError("give at most two of --start, --end and --days")
    try:
        config = SimulationConfig(seed=seed, start=_day(start), end=_day(end), days=days, scale=scale, lines_target=lines_target)
        config = config.resolved()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    url = get_settings().database_url
    if fresh:
        downgrade(url, "base")
    upgrade(url)
    db = Database(url)
    try:
        report = run_simulation(db, config, progress=not no_progress)
    except ValueError as exc:  # e.g. the database already holds a store
        raise click.ClickException(str(exc)) from None
    finally:
        db.dispose()
    click.echo(json.dumps(report.to_dict(), indent=2, default=str))


__all__ = ["simulate"]
