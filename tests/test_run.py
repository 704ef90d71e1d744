"""``doorstep run`` (what ``make run`` serves): a dispatcher and the API as two supervised
processes on a fresh SQLite file with the demo loaded. The API answers ``/readyz`` only once
dispatch is ready, an SOS pressed at that moment is offered within seconds, and SIGTERM stops
both processes. (Its own database and processes: run once, in the SQLite pass.)"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.bench.live import _free_port
from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.skipif(IS_POSTGRES, reason="its own SQLite file: once is enough")


def doorstep(*args: str, env: dict[str, str]) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(  # noqa: S603 (our own command line)
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def without_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without any signing key or demo flag this process may have been given."""
    drop = {"DOORSTEP_JWT_SECRET", "DOORSTEP_JWT_PREVIOUS_SECRETS", "DOORSTEP_DEMO"}
    return {name: value for name, value in env.items() if name not in drop}


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            out.append(int(status.parent.name))
    return out


def test_make_run_serves_dispatch_ready_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        **without_secrets(os.environ),
        "DOORSTEP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/run.db",
        "DOORSTEP_SECRETS_FILE": str(tmp_path / "secrets.env"),
    }
    # As `make run` does: a local key made once, the demo loaded on purpose.
    for step in (["init-secrets"], ["migrate"], ["seed-demo", "--demo"]):
        assert doorstep(*step, env=env).wait(120) == 0
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600
    port = _free_port()
    run = doorstep("run", "--demo", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert run.poll() is None, "doorstep run exited"
            assert time.monotonic() < deadline, "not ready in 120 s"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert len(children(run.pid)) == 2  # the dispatcher and the API

        with httpx.Client(base_url=base, timeout=10) as http:
            token = {}
            for who in ("13900000001", "operator"):
                r = http.post("/v1/auth/token", data={"username": who, "password": "doorstep-demo"})
                token[who] = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = http.post("/v1/sos", headers=token["13900000001"])
            assert r.status_code in (200, 201), r.text
            sos = r.json()["id"]
            pressed = time.monotonic()
            offered = False
            while time.monotonic() - pressed < 5 and not offered:
                r = http.get(f"/v1/ops/orders/{sos}/decisions", headers=token["operator"])
                offered = any(d["caregiver_ids"] for d in r.json())
                time.sleep(0.05)
            assert offered, "the SOS had no offer within 5 s of readiness"
            # The dispatcher's figures reach the API's /metrics (one folder for both).
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as m:  # noqa: S310
                text = m.read().decode()
            counts = {
                sample.name: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            # The demo's own pending SOS and this one.
            assert counts["doorstep_sos_to_first_offer_seconds_count"] >= 1
            assert json.loads(httpx.get(f"{base}/healthz").text) == {"status": "ok"}
    finally:
        kids = children(run.pid)
        run.send_signal(signal.SIGTERM)
        code = run.wait(30)
    assert code == 0
    time.sleep(0.5)
    for kid in kids:  # both stopped with it
        assert not Path(f"/proc/{kid}").exists() or "Z" in Path(f"/proc/{kid}/stat").read_text()
