"""End to end in a real browser: `storeom dashboards` serves the app over the hand-built warehouse and a real
database; headless Chromium (Debian's `chromium`, driven by Playwright through `executable_path`, never a
downloaded browser) opens every page, checks its key figures and that no error box shows, approves the
reorder suggestions, and saves a screenshot per page (in $STOREOM_TEST_ARTIFACTS, else the test's tmp folder).

Skips with the reason when Chromium or Playwright is missing; .ci/run installs Chromium so CI runs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from dashboards import layout as L
from tests.dashboards.conftest import REPO
from tests.dashboards.warehouse import AS_OF

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the lock file installs it
    sync_playwright = None

CHROMIUM = os.environ.get("STOREOM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM and not Path(CHROMIUM).is_file():
    CHROMIUM = None
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run installs it) "
                                                "-- or set STOREOM_CHROMIUM to its path"),
    pytest.mark.skipif(sync_playwright is None, reason="the playwright Python package is not installed (pip install -r requirements.lock)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, frames, sqlite_template):  # type: ignore[no-untyped-def]
    from tests.dashboards import warehouse

    warehouse.write(tmp_path, frames)
    order = warehouse.store_database(tmp_path, sqlite_template)
    port = _free_port()
    env = {**os.environ, "STOREOM_HOME": str(tmp_path)}
    env.pop("STOREOM_DATABASE_URL", None)
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "om_core.cli", "dashboards", "--port", str(port)], cwd=REPO, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"storeom dashboards did not start:\n{(tmp_path / 'streamlit.log').read_text()}")
        time.sleep(0.3)
    yield base, tmp_path, order
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
    log.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("STOREOM_TEST_ARTIFACTS") or tmp_path) / "dashboards-e2e"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


def test_every_page_in_chromium(server, artifacts, frames):  # type: ignore[no-untyped-def]
    base, home, order = server
    start = AS_OF - timedelta(days=27)
    sales = frames["kpi_sales"]
    day_rows = sales[(sales["grain"] == "day") & (sales["channel"] == "ALL")]
    in_range = day_rows[(day_rows["period_start"].dt.date >= start) & (day_rows["period_start"].dt.date <= AS_OF)]
    sug = frames["reorder_suggestions"]
    seg = frames["customer_segments"]
    pages = {  # url path: (title, figures that must show)
        "": ("Overview", [L.num(in_range["orders"].sum()), f"Data as of {AS_OF}"]),
        "fulfilment": ("Fulfilment", ["On-time delivery", "By carrier"]),
        "inventory": ("Inventory", ["Stock value", "SKUs to act on"]),
        "returns": ("Returns & feedback", ["Return rate", "CSAT"]),
        "forecasts": ("Forecasts", ["Next 28 days", "Portfolio accuracy"]),
        "reorder": ("Reorder", [f"Approve 0 suggestion(s)", "Policy backtest", L.num(len(sug))]),
        "recommendations": ("Recommendations", ["Model vs popularity", "Download the consent-filtered feed (CSV)"]),
        "segments": ("Segments & offers", [L.num(len(seg)), "Offer targets"]),
        "orders": ("Order lookup", ["Order number, customer id or customer email"]),
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def settle() -> None:
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=30_000)
            page.wait_for_timeout(300)

        try:
            page.goto(base)
            for path, (title, figures) in pages.items():
                # Through the sidebar, as a user does: one session, so the filters carry over.
                page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
                page.get_by_role("heading", name=title, exact=True).wait_for(timeout=30_000)
                settle()
                for figure in figures:
                    page.get_by_text(figure, exact=False).first.wait_for(timeout=10_000)
                assert page.locator('[data-testid="stException"]').count() == 0, f"error box on /{path}"
                page.screenshot(path=str(artifacts / f"{path or 'overview'}.png"), full_page=True)
                if path == "recommendations":
                    with page.expect_download() as download:
                        page.get_by_role("button", name="Download the consent-filtered feed (CSV)").click()
                    feed = pd.read_csv(download.value.path())

            page.get_by_label("Order number, customer id or customer email").fill(order)
            page.keyboard.press("Enter")
            page.get_by_text(f"Order {order}").wait_for(timeout=20_000)
            settle()
            page.get_by_text("Timeline").wait_for()
            page.screenshot(path=str(artifacts / "orders-found.png"), full_page=True)

            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Reorder", exact=True).click()
            page.get_by_role("heading", name="Reorder", exact=True).wait_for(timeout=30_000)
            settle()
            page.get_by_text("Select every suggestion shown").click()
            page.get_by_role("button", name=f"Approve {len(sug)} suggestion(s) as draft purchase orders").click()
            groups = sug.groupby(["supplier", "location"]).ngroups
            page.get_by_text(f"Created {groups} draft purchase order(s)").wait_for(timeout=30_000)
            settle()
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(artifacts / "reorder-approved.png"), full_page=True)
        finally:
            browser.close()

    from sqlalchemy import func, select

    from om_core.db import Database
    from om_core.models import PurchaseOrder

    db = Database(f"sqlite:///{home / 'storeom.db'}")
    try:
        with db.read() as s:
            assert s.scalar(select(func.count()).select_from(PurchaseOrder).where(PurchaseOrder.status == "draft")) == groups
    finally:
        db.dispose()
    assert len(list(artifacts.glob("*.png"))) == len(pages) + 2
    recs = frames["recommendations"]
    opted_in = recs[recs["customer_id"] == 1]  # Ada (customer 1) opted in to marketing in the test store, Bob did not
    assert feed[["customer_id", "sku", "rank"]].values.tolist() == opted_in.sort_values("rank")[["customer_id", "sku", "rank"]].values.tolist()
