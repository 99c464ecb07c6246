"""`storeom dashboards [--port 8501] [--host 127.0.0.1]`: the Streamlit dashboards over the warehouse.

om_core imports nothing from `dashboards`: the app file is found by location only, and Streamlit runs it
in its own process with STOREOM_HOME (and STOREOM_DATABASE_URL, when set) passed through.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from om_core.config import Settings, get_settings


def app_path() -> Path | None:
    """dashboards/streamlit_app.py of the installed (or checked-out) project, without importing it."""
    spec = importlib.util.find_spec("dashboards")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "streamlit_app.py")
    candidates.append(Path(__file__).resolve().parents[1] / "dashboards" / "streamlit_app.py")
    return next((c for c in candidates if c.is_file()), None)


def command(app: Path, *, port: int, host: str) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), "--server.address", host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]


def environment(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "STOREOM_HOME": str(settings.home)}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def start(settings: Settings, *, port: int = 8501, host: str = "127.0.0.1", **popen: Any) -> subprocess.Popen | None:
    """Start the dashboards in the background (for `storeom demo`); None when the app is not installed."""
    app = app_path()
    if app is None:
        return None
    return subprocess.Popen(command(app, port=port, host=host), env=environment(settings), cwd=app.parent.parent, **popen)


@click.command("dashboards")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
def dashboards(port: int, host: str) -> None:
    """Serve the dashboards (managers, merchandisers, marketing, operations) until Ctrl+C."""
    settings = get_settings()
    app = app_path()
    if app is None:
        raise click.ClickException("The dashboards are not installed (dashboards/streamlit_app.py not found).")
    click.echo(f"StoreOM dashboards on http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
               f"  (data: {settings.home})", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(app.parent.parent)
    os.execve(sys.executable, command(app, port=port, host=host), environment(settings))
