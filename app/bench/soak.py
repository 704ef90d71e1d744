"""Mixed traffic against the embedded default, as a new user would run it: ``doorstep run --demo``
on a fresh SQLite file with the demo loaded, then for ``minutes``: seniors placing ASAP and
scheduled orders and the odd SOS and cancellation, every demo caregiver answering offers
(accepting, declining or letting them expire), operators reading the queue, and ``/healthz``
probed every 100 ms. Afterwards it says whether anything compiled (numba's cache gained files),
the ``/healthz`` latency, and every 5xx.

``python -m app.bench.soak [--minutes 10]`` (exit 1 on a 5xx, a compile, or /healthz p99 over
100 ms). Progress goes to stderr once a minute.
"""

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.bench.live import _free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "doorstep-demo"  # noqa: S105 (the demo's public password)
SERVICES = ("meal_delivery", "cleaning", "companionship", "bathing", "nursing_visit")


def cache_files() -> int:
    """Files in numba's cache (``NUMBA_CACHE_DIR``, else beside the engine's code)."""
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or ROOT / "app" / "dispatch" / "__pycache__")
    return sum(1 for p in folder.rglob("*") if p.suffix in {".nbi", ".nbc"})


def doorstep(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command line)
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


class Soak:
    def __init__(self, base: str, minutes: float, seed: int) -> None:
        self.base = base
        self.until = time.monotonic() + 60 * minutes
        self.rng = random.Random(seed)
        self.health_ms: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.refusals: Counter[str] = Counter()  # 4xx by endpoint and problem code
        self.placed = self.sos = self.accepted = self.declined = self.ignored = 0

    async def call(
        self, http: httpx.AsyncClient, method: str, path: str, **kw: Any
    ) -> httpx.Response | None:
        try:
            r = await http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.errors.append(f"{method} {path}: {exc!r}")
            return None
        self.statuses[r.status_code] += 1
        if 400 <= r.status_code < 500:
            with contextlib.suppress(ValueError, AttributeError):
                self.refusals[f"{path.split('/')[2]} {r.json().get('code')}"] += 1
        if r.status_code >= 500:
            self.errors.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return r

    async def login(self, http: httpx.AsyncClient, login: str) -> dict[str, str]:
        r = await http.post("/v1/auth/token", data={"username": login, "password": PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def probe(self, http: httpx.AsyncClient) -> None:
        while time.monotonic() < self.until:
            started = time.perf_counter()
            r = await self.call(http, "GET", "/healthz")
            ms = 1000 * (time.perf_counter() - started)
            self.health_ms.append(ms if r is not None and r.status_code == 200 else 1e9)
            await asyncio.sleep(0.1)

    async def senior(self, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
        while time.monotonic() < self.until:
            await asyncio.sleep(self.rng.uniform(20, 90))
            roll = self.rng.random()
            if roll < 0.03:
                r = await self.call(http, "POST", "/v1/sos", headers=auth)
                self.sos += 1
                continue
            body: dict[str, Any] = {"service_code": self.rng.choice(SERVICES)}
            if roll < 0.35:
                start = datetime.now(UTC) + timedelta(hours=self.rng.uniform(1, 20))
                body["window_start"] = start.isoformat()
                body["window_end"] = (start + timedelta(hours=2)).isoformat()
            r = await self.call(http, "POST", "/v1/orders", headers=auth, json=body)
            if r is not None and r.status_code == 201:
                self.placed += 1
                if self.rng.random() < 0.1:
                    await asyncio.sleep(self.rng.uniform(1, 30))
                    await self.call(
                        http,
                        "POST",
                        f"/v1/orders/{r.json()['id']}/cancel",
                        headers=auth,
                        json={"reason": "changed my mind"},
                    )

    async def caregiver(self, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
        answered: set[str] = set()
        while time.monotonic() < self.until:
            await asyncio.sleep(self.rng.uniform(1.5, 3))
            r = await self.call(http, "GET", "/v1/offers", headers=auth, params={"status": "open"})
            if r is None or r.status_code != 200:
                continue
            for offer in r.json()["items"]:
                if offer["id"] in answered:
                    continue
                answered.add(offer["id"])
                roll = self.rng.random()
                if roll < 0.6:
                    await self.call(http, "POST", f"/v1/offers/{offer['id']}/accept", headers=auth)
                    self.accepted += 1
                elif roll < 0.8:
                    await self.call(
                        http,
                        "POST",
                        f"/v1/offers/{offer['id']}/decline",
                        headers=auth,
                        json={"reason": "busy"},
                    )
                    self.declined += 1
                else:
                    self.ignored += 1  # let it expire

    async def operator(self, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
        while time.monotonic() < self.until:
            await asyncio.sleep(5)
            await self.call(http, "GET", "/v1/ops/queue", headers=auth)

    async def progress(self, minutes: float) -> None:
        started = time.monotonic()
        while time.monotonic() < self.until:
            await asyncio.sleep(60)
            p99 = _p99(self.health_ms)
            print(
                f"  {round((time.monotonic() - started) / 60)}/{minutes:g} min: "
                f"{self.placed} orders, {self.sos} SOS, {self.accepted} accepted, "
                f"/healthz p99 {p99:.0f} ms, 5xx {sum(n for s, n in self.statuses.items() if s >= 500)}",
                file=sys.stderr,
            )


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 100 else float("nan")


async def traffic(base: str, db: Path, minutes: float, seed: int) -> Soak:
    soak = Soak(base, minutes, seed)
    with sqlite3.connect(db) as conn:
        logins = dict(
            conn.execute("SELECT login, role FROM account WHERE role IN ('senior', 'caregiver')")
        )
    limits = httpx.Limits(max_connections=400)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        operator = await soak.login(http, "operator")
        seniors = [login for login, role in logins.items() if role == "senior"]
        caregivers = [login for login, role in logins.items() if role == "caregiver"]
        tasks = [soak.probe(http), soak.operator(http, operator), soak.progress(minutes)]
        for login in seniors:
            tasks.append(soak.senior(http, await soak.login(http, login)))
        for login in caregivers:
            tasks.append(soak.caregiver(http, await soak.login(http, login)))
        await asyncio.gather(*tasks)
    return soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "soak.db"
        env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "DOORSTEP_JWT_SECRET": secrets.token_urlsafe(48),  # the soak's own, at random
        }
        doorstep("migrate", env=env)
        doorstep("seed-demo", "--demo", env=env)
        files = cache_files()
        port = _free_port()
        log = Path(tmp) / "run.log"
        with log.open("w") as out:
            proc = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-c",
                    "from app.cli import main; main()",
                    "run",
                    "--demo",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            started = time.monotonic()
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() - started > 600:
                    print(log.read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(0.2)
            print(
                f"ready in {time.monotonic() - started:.1f} s; traffic for {args.minutes:g} min",
                file=sys.stderr,
            )
            soak = asyncio.run(traffic(base, db, args.minutes, args.seed))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        compiled = cache_files() - files
        p99 = _p99(soak.health_ms)
        fivexx = sum(n for s, n in soak.statuses.items() if s >= 500)
        print(
            f"{args.minutes:g} min of mixed traffic: {soak.placed} orders, {soak.sos} SOS, "
            f"offers {soak.accepted} accepted / {soak.declined} declined / {soak.ignored} left "
            f"to expire; /healthz p50 {statistics.median(soak.health_ms):.1f} ms, "
            f"p99 {p99:.1f} ms, max {max(soak.health_ms):.0f} ms over {len(soak.health_ms)}; "
            f"responses {dict(sorted(soak.statuses.items()))}; 4xx {dict(soak.refusals)}; "
            f"5xx {fivexx}; "
            f"kernel cache files added: {compiled}"
        )
        for line in soak.errors[:20]:
            print("  error:", line)
        return 0 if fivexx == 0 and compiled == 0 and p99 <= 100 and not soak.errors else 1


if __name__ == "__main__":
    sys.exit(main())
