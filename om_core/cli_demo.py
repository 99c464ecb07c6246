"""`storeom demo`: a believable store in one command — simulate it (or reuse it), run every
pipeline, then serve what there is to look at until Ctrl+C."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from sqlalchemy import func, select

from om_core.config import get_settings


def _store_exists(url: str) -> bool:
    from om_core.db import Database
    from om_core.models import Order

    db = Database(url)
    try:
        with db.read() as s:
            return (s.scalar(select(func.count()).select_from(Order)) or 0) > 0
    finally:
        db.dispose()


def _workspace() -> Path | None:
    spec = importlib.util.find_spec("pipelines")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))).parent / "workspace.yaml"
    return candidate if candidate.exists() else None


@click.command("demo")
@click.option("--fresh", is_flag=True, help="Simulate again from an empty database.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--scale", type=float, default=1.0, show_default=True, help="Size of the simulated store (1 = the default store).")
@click.option("--sample", is_flag=True, help="The small sample store instead of the simulation (seconds, for a quick look).")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the UIs afterwards until Ctrl+C.")
def demo(fresh: bool, seed: int, scale: float, sample: bool, serve: bool) -> None:
    """Build the demo store (reused when it exists), run every pipeline, serve the UIs."""
    from om_core.db import Database
    from om_core.schema import downgrade, upgrade

    settings = get_settings()
    url = settings.database_url
    if fresh:
        downgrade(url, "base")
    upgrade(url)
    started = time.perf_counter()
    if _store_exists(url):
        click.echo("Reusing the store in the database (make demo FRESH=1 simulates a new one).", err=True)
    elif sample:
        from om_core.demo import build_demo_store

        click.echo(json.dumps(build_demo_store(settings, seed=seed), indent=2, default=str))
    else:
        from om_core.simulator.config import SimulationConfig
        from om_core.simulator.run import simulate

        click.echo(f"Simulating the default store (seed {seed}, scale {scale}) ...", err=True)
        db = Database(url)
        try:
            report = simulate(db, SimulationConfig(seed=seed, scale=scale).resolved(), progress=True)
        finally:
            db.dispose()
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    click.echo("Running every pipeline (storeom pipeline run) ...", err=True)
    from om_core.cli_pipeline import run_pipeline

    result, _ = run_pipeline()
    failed = [name for name, a in result["assets"].items() if a.get("status") != "materialized"]
    click.echo(f"Pipelines: {len(result['assets']) - len(failed)} assets materialized"
               + (f", not materialized: {', '.join(failed)}" if failed else "") + f" ({time.perf_counter() - started:.0f} s so far).", err=True)
    if not serve:
        return
    _serve(settings)


def _interrupt(signum, frame) -> None:  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt


def _serve(settings) -> None:  # type: ignore[no-untyped-def]
    from om_core.cli_dashboards import start as start_dashboards

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "start_new_session": True}
    served: list[tuple[str, str, subprocess.Popen]] = []
    workspace = _workspace()
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    if workspace is None or dagster is None:
        click.echo("Dagster UI not available (pipelines or dagster not installed).", err=True)
    else:
        settings.dagster_home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DAGSTER_HOME": str(settings.dagster_home)}
        served.append(("Dagster UI", "http://localhost:3000", subprocess.Popen(
            [dagster, "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", "3000"], cwd=workspace.parent, env=env, **quiet)))
    served.append(("HTTP API", "http://localhost:8000/docs", subprocess.Popen(
        [sys.executable, "-m", "om_core.cli", "serve", "--host", "127.0.0.1", "--port", "8000", "--log-level", "warning"], **quiet)))
    dashboards = start_dashboards(settings, port=8501, host="127.0.0.1", **quiet)
    if dashboards is None:
        click.echo("Dashboards not available (dashboards/streamlit_app.py not installed).", err=True)
    else:
        served.append(("Dashboards", "http://localhost:8501", dashboards))
    if not served:
        return
    click.echo("\nStoreOM demo is running:")
    for name, url, _ in served:
        click.echo(f"  {name:<12} {url}")
    click.echo("  API keys     storeom apikey create --role admin --name demo   (send it as the X-API-Key header)")
    click.echo(f"  Data         {settings.home}  (database, warehouse/*.parquet, labels, outbox)")
    click.echo("Press Ctrl+C to stop.")
    signal.signal(signal.SIGTERM, _interrupt)  # a plain kill stops the UIs too
    try:
        while any(process.poll() is None for _, _, process in served):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for _, _, process in served:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, _, process in served:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
