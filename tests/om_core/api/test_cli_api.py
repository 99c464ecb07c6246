"""`storeom apikey ...`, `storeom webhooks ...` and `storeom serve --help` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from om_core.api import create_app
from om_core.cli import main
from om_core.db import Database
from om_core.schema import upgrade
from om_core.services.locations import create_channel
from tests.om_core.api.conftest import NO_LIMITS


def runner(tmp_path: Path) -> tuple[CliRunner, str]:
    url = f"sqlite:///{tmp_path}/storeom.db"
    upgrade(url)
    db = Database(url)
    with db.transaction() as s:
        create_channel(s, {"code": "web", "name": "Web", "kind": "web"})
    db.dispose()
    return CliRunner(env={"STOREOM_HOME": str(tmp_path), "STOREOM_DATABASE_URL": url}), url


def test_apikey_create_list_revoke(tmp_path: Path):
    cli, url = runner(tmp_path)
    created = cli.invoke(main, ["apikey", "create", "--role", "channel", "--channel", "web", "--name", "shop"])
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert data["key"].startswith(f"som_{data['prefix']}_") and data["channel"] == "web" and "not shown again" in created.stderr
    listed = cli.invoke(main, ["apikey", "list"])
    assert data["key"] not in listed.stdout and json.loads(listed.stdout)[0]["prefix"] == data["prefix"]
    from fastapi.testclient import TestClient

    db = Database(url)
    client = TestClient(create_app(db, NO_LIMITS), headers={"X-API-Key": data["key"]})
    assert client.get("/v1/channels").status_code == 200
    assert cli.invoke(main, ["apikey", "revoke", data["prefix"]]).exit_code == 0
    assert client.get("/v1/channels").status_code == 401
    db.dispose()
    bad = cli.invoke(main, ["apikey", "create", "--role", "channel"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error [validation_error]")
    assert cli.invoke(main, ["apikey", "create", "--role", "store_ops", "--location", "NOPE"]).stderr.startswith("error [unknown_location]")
    assert len(json.loads(cli.invoke(main, ["apikey", "list", "--active"]).stdout)) == 0
    assert cli.invoke(main, ["apikey", "revoke", "nope"]).stderr.startswith("error [unknown_api_key]")


def test_webhooks_add_list_remove_deliver(tmp_path: Path):
    cli, _ = runner(tmp_path)
    added = cli.invoke(main, ["webhooks", "add", "https://erp.example.com/hooks", "--event", "order.placed", "--event", "refund.issued"])
    assert added.exit_code == 0, added.output
    sub = json.loads(added.stdout)
    assert len(sub["secret"]) == 64 and sub["event_types"] == ["order.placed", "refund.issued"]
    assert "secret" not in json.loads(cli.invoke(main, ["webhooks", "list"]).stdout)[0]
    assert cli.invoke(main, ["webhooks", "add", "https://x.example.com", "--event", "nope"]).stderr.startswith("error [validation_error]")
    assert json.loads(cli.invoke(main, ["webhooks", "deliver"]).stdout) == {"low_stock_events": 0, "delivered": 0, "failed": 0, "dead": 0}
    assert json.loads(cli.invoke(main, ["webhooks", "remove", str(sub["id"])]).stdout)["active"] is False
    assert json.loads(cli.invoke(main, ["webhooks", "list"]).stdout) == []


def test_serve_help():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output and "127.0.0.1" in result.output


def test_serve_answers_over_http_and_logs_redacted(tmp_path: Path):
    """`storeom serve` in a subprocess on loopback: health without a key, 401 without one elsewhere, and the
    access log on stderr carries the key's prefix but never the key or a customer's email."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    _, url = runner(tmp_path)
    db = Database(url)
    with db.transaction() as s:
        from om_core.services.apikeys import create_api_key

        key = create_api_key(s, {"role": "manager"})[1]
    db.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "STOREOM_HOME": str(tmp_path), "STOREOM_DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "om_core.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # a loaded CI machine may take a while to import everything
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("storeom serve did not answer")
        assert httpx.get(f"{base}/v1/channels").status_code == 401
        r = httpx.get(f"{base}/v1/customers", params={"email": "ada@example.com"}, headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["items"] == []
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)
    assert f"GET /v1/customers?email=a***%40example.com 200 key={key.split('_')[1]}" in stderr
    assert key not in stderr and "ada@example.com" not in stderr and "ada%40example.com" not in stderr
