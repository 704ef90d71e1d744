"""The whole service under load, as it runs in production: uvicorn with several workers on
PostgreSQL, orders placed concurrently over HTTP, scripted caregivers who listen on
``/v1/events`` and accept or decline, an operator's stream, and (optionally) the dispatcher's
worker killed with SIGKILL mid-run.

Used by the end-to-end test (``tests/test_live.py``, smaller) and by ``make bench`` (section
``live``). Everything it checks afterwards it reads from the database, not from what the
service said: one active visit per order, no caregiver booked twice at once, no open offer past
its deadline, every order assigned, escalated or cancelled, and every stream delivering each of
its events exactly once.
"""

import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine
from app.deps import Principal
from app.models import Offer, OfferStatus, Order, OrderStatus, OutboxEvent, Role
from app.schemas.people import (
    CaregiverIn,
    DistrictIn,
    OperatorIn,
    ProviderIn,
    SeniorIn,
    ShiftIn,
    SkillIn,
)
from app.security import create_access_token, hash_password
from app.services import accounts

CENTRE = (34.2655, 108.9081)  # Lianhu District, Xi'an
SERVICES = ("cleaning", "meal_delivery", "companionship", "bathing", "nursing_visit")
SKILLS = ("housekeeping", "bathing", "personal_care", "nursing", "medication", "first_aid")
PASSWORD = "load-test-password"  # noqa: S105


@dataclass
class Plan:
    orders: int = 500
    emergencies: int = 20  # of which SOS
    caregivers: int = 150
    workers: int = 2
    concurrency: int = 64
    accept_rate: float = 0.8
    kill_leader_after_s: float | None = None  # after the last order is placed
    settle_timeout_s: float = 180.0
    seed: int = 7


@dataclass
class Cast:
    operator: str
    caregivers: dict[uuid.UUID, str]  # id -> token
    seniors: list[str]  # tokens


@dataclass
class StreamLog:
    ids: list[int] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    reconnects: int = 0
    opened: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Report:
    placed: int = 0
    place_seconds: float = 0.0
    place_errors: Counter[int] = field(default_factory=Counter)
    settled_seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    first_offer_ms: list[float] = field(default_factory=list)
    emergency_first_offer_ms: list[float] = field(default_factory=list)
    # Orders nobody could be offered (the whole crew booked): straight to the operators.
    unoffered_escalations: Counter[str] = field(default_factory=Counter)  # by reason
    emergency_escalations: Counter[str] = field(default_factory=Counter)  # those of emergencies
    delivery_ms: list[float] = field(default_factory=list)
    takeover_s: float | None = None
    dispatch_seconds: float = 0.0  # first order placed to last first offer
    accepted: int = 0
    declined: int = 0
    answer_conflicts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # /metrics after the run
    log_lines: int = 0  # lines the processes logged (each checked to be JSON)
    shed: int = 0  # 503s (with Retry-After) the load generator waited out and sent again

    @property
    def orders_per_s(self) -> float:
        return self.placed / self.place_seconds if self.place_seconds else 0.0

    @property
    def dispatched_per_s(self) -> float:
        n = len(self.first_offer_ms)
        return n / self.dispatch_seconds if self.dispatch_seconds else 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {statistics.median(values):.0f}, p95 {pct(values, 95):.0f}, "
        f"p99 {pct(values, 99):.0f} (n={len(values)})"
    )


async def reset(settings: Settings) -> None:
    """An empty, migrated database."""
    engine = create_engine(settings)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    env = {**os.environ, "DOORSTEP_DATABASE_URL": settings.database_url}
    command = [sys.executable, "-c", "from app.cli import migrate; migrate()"]
    await asyncio.to_thread(subprocess.run, command, check=True, env=env)


def _near(rng: random.Random, km: float) -> tuple[float, float]:
    r = km * 1000 * math.sqrt(rng.random())
    a = rng.random() * 2 * math.pi
    lat = CENTRE[0] + r * math.cos(a) / 111_320
    lon = CENTRE[1] + r * math.sin(a) / (111_320 * math.cos(math.radians(CENTRE[0])))
    return lat, lon


async def populate(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, plan: Plan
) -> Cast:
    """A district with caregivers on shift and on duty around it, and seniors in it."""
    rng = random.Random(plan.seed)
    now = datetime.now(UTC)
    hashed = await hash_password(PASSWORD)
    seniors_needed = max(plan.orders, plan.emergencies)
    async with sessionmaker() as session, session.begin():
        district = await accounts.create_district(
            session, DistrictIn(code="loadtest", name="Load test", city="Xi'an")
        )
        op = await accounts.create_operator(
            session,
            OperatorIn(
                login="op.load", password=PASSWORD, name="Operator", district_id=district.id
            ),
        )
        operator = Principal(id=op.id, role=Role.operator, district_id=district.id)
        provider, _key = await accounts.create_provider(
            session, operator, ProviderIn(login="prov.load", name="Load Care")
        )
        caregivers = {}
        for i in range(plan.caregivers):
            lat, lon = _near(rng, 4.0)
            c = await accounts.create_caregiver(
                session,
                operator,
                CaregiverIn(
                    provider_id=provider.id,
                    name=f"Caregiver {i}",
                    phone=f"1370{i:07d}",
                    password=PASSWORD,
                    gender="female" if i % 2 else "male",
                    languages=["zh"],
                    service_radius_m=8000,
                    daily_visit_cap=12,
                    skills=[
                        SkillIn(skill=s, certificate_expires_on=date(2099, 1, 1)) for s in SKILLS
                    ],
                    shifts=[
                        ShiftIn(
                            starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=12)
                        )
                    ],
                ),
                password_hash=hashed,
            )
            c.on_duty = True
            c.lat, c.lon, c.position_at = lat, lon, now
            caregivers[c.id] = create_access_token(settings, account_id=c.id, role=Role.caregiver)[
                0
            ]
        seniors = []
        for i in range(seniors_needed):
            lat, lon = _near(rng, 3.0)
            s = await accounts.create_senior(
                session,
                operator,
                SeniorIn(
                    name=f"Senior {i}",
                    phone=f"1390{i:07d}",
                    password=PASSWORD,
                    gender="female",
                    address=f"Room {i}, Load Street",
                    neighbourhood="Tumen",
                    lat=lat,
                    lon=lon,
                    languages=["zh"],
                    care_notes="",
                    emergency_contacts=[],
                ),
                now=now,
                password_hash=hashed,
            )
            seniors.append(create_access_token(settings, account_id=s.id, role=Role.senior)[0])
    return Cast(
        operator=create_access_token(settings, account_id=op.id, role=Role.operator)[0],
        caregivers=caregivers,
        seniors=seniors,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def server(
    settings: Settings, workers: int, *, dispatchers: int = 2, log_dir: Path | None = None
) -> AsyncIterator[str]:
    """``doorstep serve --workers N`` and ``dispatchers`` times ``doorstep dispatcher`` (they share
    the districts; one holds each, the others stand by), each process in a group of its own;
    yields the API's base URL once every one of them is ready. They share one Prometheus
    folder, so the API's ``/metrics`` carries the dispatchers' figures; each process's log goes
    to a file in ``log_dir`` (a temporary file without one)."""
    env = {
        **os.environ,
        "DOORSTEP_ENV": settings.env.value,
        "DOORSTEP_DATABASE_URL": settings.database_url,
        "DOORSTEP_JWT_SECRET": settings.jwt_signing_key,
        "DOORSTEP_DISPATCH_POLL_S": str(settings.dispatch_poll_s),
        "DOORSTEP_DISPATCH_MIN_INTERVAL_S": str(settings.dispatch_min_interval_s),
        "DOORSTEP_LEADER_RETRY_S": str(settings.leader_retry_s),
        "DOORSTEP_STREAM_POLL_S": str(settings.stream_poll_s),
        "DOORSTEP_DB_POOL_SIZE": str(settings.db_pool_size),
        "DOORSTEP_DB_MAX_OVERFLOW": str(settings.db_max_overflow),
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="doorstep-bench-metrics-"),
    }
    port = _free_port()
    commands = [["serve", "--port", str(port), "--workers", str(workers)]]
    probes = [port]
    for _ in range(dispatchers):
        probes.append(_free_port())
        commands.append(["dispatcher", "--port", str(probes[-1])])
    # Each process's log goes to a file (a pipe nobody reads would fill and stall it).
    logs = [
        (log_dir / f"{i}-{args[0]}.log").open("w+")
        if log_dir is not None
        else tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed below)
        for i, args in enumerate(commands)
    ]
    procs = [
        subprocess.Popen(  # noqa: S603, ASYNC220 (starts it and returns at once)
            [
                sys.executable,
                "-c",
                "from app.cli import main; main()",
                *args,
                "--host",
                "127.0.0.1",
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for args, log in zip(commands, logs, strict=True)
    ]
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for probe, proc, log, args in zip(probes, procs, logs, commands, strict=True):
                for _ in range(3000):
                    with contextlib.suppress(httpx.HTTPError):
                        r = await http.get(f"http://127.0.0.1:{probe}/readyz")
                        if r.status_code == 200:
                            break
                    if proc.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(f"{args[0]} exited: {log.read()[-2000:]}")
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"{args[0]} did not become ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
        for log in logs:
            log.close()
        shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


async def leader_pid(engine: AsyncEngine) -> int | None:
    """The OS pid of a dispatcher holding a district's lock (its connection is named so)."""
    async with engine.connect() as conn:
        name = await conn.scalar(
            text(
                "SELECT a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND a.application_name LIKE 'doorstep-dispatcher:%'"
            )
        )
    return int(name.split(":", 1)[1]) if name else None


async def read_sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Server-Sent Events from a response's lines: each event as ``{"id", "type", "data"}``,
    each comment (keep-alive) as ``{"comment": text}``."""
    event: dict[str, Any] = {}
    async for line in lines:
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line.startswith("id: "):
            event["id"] = int(line[4:])
        elif line.startswith("event: "):
            event["type"] = line[7:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line == "" and "type" in event:
            yield event
            event = {}


async def listen(
    http: httpx.AsyncClient,
    token: str,
    log: StreamLog,
    on_event: Any,
    stop: asyncio.Event,
) -> None:
    """One SSE subscriber that reconnects with Last-Event-ID until told to stop."""
    last: int | None = None
    while not stop.is_set():
        headers = {"Authorization": f"Bearer {token}"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        try:
            async with http.stream("GET", "/v1/events", headers=headers, timeout=None) as r:
                async for event in read_sse(r.aiter_lines()):
                    if "comment" in event:
                        continue
                    last = event["id"]
                    if event["type"] == "stream.open":
                        log.opened.set()
                        continue
                    log.ids.append(event["id"])
                    at = datetime.fromisoformat(event["data"]["at"]).timestamp()
                    log.latency_s.append(time.time() - at)
                    if on_event is not None:
                        await on_event(event)
        except (httpx.HTTPError, ValueError):
            pass
        if not stop.is_set():
            log.reconnects += 1
            await asyncio.sleep(0.2)


async def run(settings: Settings, plan: Plan, cast: Cast, engine: AsyncEngine) -> Report:
    """Serve, load, answer, (kill), settle, and check; the report says what happened."""
    report = Report()
    rng = random.Random(plan.seed + 1)
    stop = asyncio.Event()
    streams: dict[str, StreamLog] = {}
    log_dir = Path(tempfile.mkdtemp(prefix="doorstep-bench-logs-"))
    async with server(settings, plan.workers, log_dir=log_dir) as base:
        limits = httpx.Limits(max_connections=plan.caregivers + plan.concurrency + 20)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

            def answerer(token: str) -> Any:
                async def on_event(event: dict[str, Any]) -> None:
                    if event.get("type") != "offer.created":
                        return
                    offer_id = event["data"]["offer_id"]
                    accept = rng.random() < plan.accept_rate
                    path = f"/v1/offers/{offer_id}/{'accept' if accept else 'decline'}"
                    body = None if accept else {"reason": "busy"}
                    try:
                        r = await http.post(
                            path, json=body, headers={"Authorization": f"Bearer {token}"}
                        )
                        if r.status_code == 503:  # shed: once more after Retry-After
                            report.shed += 1
                            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                            r = await http.post(
                                path, json=body, headers={"Authorization": f"Bearer {token}"}
                            )
                    except httpx.TransportError:
                        report.answer_conflicts["connection lost"] += 1
                        return  # the offer expires and the order is offered again
                    if r.status_code == 200:
                        if accept:
                            report.accepted += 1
                        else:
                            report.declined += 1
                    else:
                        report.answer_conflicts[r.json().get("code", str(r.status_code))] += 1

                return on_event

            listeners = []
            for cid, token in cast.caregivers.items():
                log = streams.setdefault(str(cid), StreamLog())
                listeners.append(
                    asyncio.create_task(listen(http, token, log, answerer(token), stop))
                )
            op_log = streams.setdefault("operator", StreamLog())
            listeners.append(asyncio.create_task(listen(http, cast.operator, op_log, None, stop)))
            # Every stream is open (and has its starting position) before the first order.
            await asyncio.wait_for(
                asyncio.gather(*(log.opened.wait() for log in streams.values())), timeout=60
            )

            await _place(http, cast, plan, report)
            # Mid-run: offers and answers still in flight (after the placing, so that the
            # emergencies' figures measure dispatch, not the takeover).
            killer = None
            if plan.kill_leader_after_s is not None:
                killer = asyncio.create_task(_kill_leader(engine, plan, report))
            settled = time.monotonic()
            await _settle(engine, plan, report)
            report.settled_seconds = time.monotonic() - settled
            if killer is not None:
                await killer
            # Let every stream catch up with what the relay published last.
            await asyncio.sleep(3 * settings.stream_poll_s + 1)
            stop.set()
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            report.metrics = _scrape(await http.get("/metrics"))
    _read_logs(log_dir, report)
    await _check(engine, cast, streams, report)
    report.delivery_ms = [1000 * x for log in streams.values() for x in log.latency_s]
    return report


# What the scrape after a run must show moved (the API's /metrics, every process's figures).
MOVED = (
    "doorstep_http_request_duration_seconds_count",
    "doorstep_dispatch_pass_duration_seconds_count",
    "doorstep_order_to_first_offer_seconds_count",
    "doorstep_sos_to_first_offer_seconds_count",
    "doorstep_outbox_lag_seconds_count",
)


def _scrape(response: httpx.Response) -> dict[str, float]:
    """Each sample's total over its labels, from the Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _read_logs(log_dir: Path, report: Report) -> None:
    """Every line every process logged must be one JSON object with a timestamp and a level."""
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text().splitlines():
            report.log_lines += 1
            try:
                record = json.loads(line)
                assert isinstance(record, dict)
                assert {"timestamp", "level", "message"} <= record.keys()
            except (ValueError, AssertionError):
                report.problems.append(f"{path.name}: a log line is not JSON: {line[:120]}")
                break
    shutil.rmtree(log_dir, ignore_errors=True)


async def _place(http: httpx.AsyncClient, cast: Cast, plan: Plan, report: Report) -> None:
    rng = random.Random(plan.seed + 2)
    jobs: list[tuple[str, str, dict[str, Any] | None]] = []
    for i in range(plan.orders - plan.emergencies):
        jobs.append((cast.seniors[i], "/v1/orders", {"service_code": rng.choice(SERVICES)}))
    for i in range(plan.emergencies):
        jobs.append((cast.seniors[-1 - i], "/v1/sos", None))
    rng.shuffle(jobs)
    queue: asyncio.Queue[tuple[str, str, dict[str, Any] | None]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            token, path, body = queue.get_nowait()
            # As a phone would: a retry after a cut connection (a worker killed mid-request)
            # carries the same Idempotency-Key, so it never places a second order.
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
            # And after a 503 (the service shed load) it waits Retry-After and sends it again.
            for attempt in range(10):
                try:
                    r = await http.post(path, json=body, headers=headers)
                except httpx.TransportError:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                if r.status_code != 503:
                    break
                report.shed += 1
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            else:
                report.place_errors[0] += 1
                continue
            if r.status_code in (200, 201):
                report.placed += 1
            else:
                report.place_errors[r.status_code] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
    report.place_seconds = time.monotonic() - started


async def _kill_leader(engine: AsyncEngine, plan: Plan, report: Report) -> None:
    assert plan.kill_leader_after_s is not None
    await asyncio.sleep(plan.kill_leader_after_s)
    pid = await leader_pid(engine)
    if pid is None:
        report.problems.append("no dispatcher held the lock when it was to be killed")
        return
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < 30:
        now_pid = await leader_pid(engine)
        if now_pid is not None and now_pid != pid:
            report.takeover_s = time.monotonic() - killed
            return
        await asyncio.sleep(0.05)
    report.problems.append("nobody took over the dispatcher within 30 s")


async def _settle(engine: AsyncEngine, plan: Plan, report: Report) -> None:
    """Until no order is pending or offered (each is assigned, escalated or cancelled)."""
    deadline = time.monotonic() + plan.settle_timeout_s
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            open_ = await conn.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.status.in_((OrderStatus.pending, OrderStatus.offered)))
            )
        if open_ == 0:
            return
        await asyncio.sleep(0.5)
    report.problems.append(
        f"{open_} orders still pending or offered after {plan.settle_timeout_s} s"
    )


async def _check(
    engine: AsyncEngine, cast: Cast, streams: dict[str, StreamLog], report: Report
) -> None:
    async with engine.connect() as conn:
        report.statuses = Counter(
            {
                str(s): n
                for s, n in (
                    await conn.execute(select(Order.status, func.count()).group_by(Order.status))
                ).all()
            }
        )
        doubled = (
            await conn.execute(
                text(
                    "SELECT order_id FROM visit WHERE status IN ('assigned','in_progress','completed') "
                    "GROUP BY order_id HAVING count(*) > 1"
                )
            )
        ).all()
        if doubled:
            report.problems.append(f"{len(doubled)} orders with two active visits")
        overlaps = await conn.scalar(
            text(
                "SELECT count(*) FROM visit a JOIN visit b ON a.caregiver_id = b.caregiver_id "
                "AND a.id < b.id AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
                "WHERE a.status IN ('assigned','in_progress','completed') "
                "AND b.status IN ('assigned','in_progress','completed')"
            )
        )
        if overlaps:
            report.problems.append(f"{overlaps} overlapping visits of one caregiver")
        stale = await conn.scalar(
            select(func.count())
            .select_from(Offer)
            .where(
                Offer.status == OfferStatus.open,
                Offer.deadline < datetime.now(UTC) - timedelta(seconds=3),
            )
        )
        if stale:
            report.problems.append(f"{stale} open offers past their deadline")
        firsts = (
            await conn.execute(
                select(Order.priority, Order.created_at, func.min(Offer.created_at))
                .join(Offer, Offer.order_id == Order.id)
                .group_by(Order.id, Order.priority, Order.created_at)
            )
        ).all()
        if firsts:
            span = max(f for _, _, f in firsts) - min(c for _, c, _ in firsts)
            report.dispatch_seconds = span.total_seconds()
        for priority, created, first in firsts:
            ms = (first - created).total_seconds() * 1000
            report.first_offer_ms.append(ms)
            if str(priority) == "emergency":
                report.emergency_first_offer_ms.append(ms)
        unoffered = (
            await conn.execute(
                select(Order.priority, Order.escalated_at, Order.escalation_reason).where(
                    ~select(Offer.id).where(Offer.order_id == Order.id).exists(),
                    Order.status != OrderStatus.cancelled,
                )
            )
        ).all()
        for priority, escalated_at, reason in unoffered:
            if escalated_at is None:
                report.problems.append(f"an order ({priority}) was neither offered nor escalated")
                continue
            report.unoffered_escalations[reason or ""] += 1
            if str(priority) == "emergency":
                report.emergency_escalations[reason or ""] += 1
        unpublished = await conn.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.position.is_(None))
        )
        if unpublished:
            report.problems.append(f"{unpublished} outbox events never published")
        for key, log in streams.items():
            if len(set(log.ids)) != len(log.ids):
                report.problems.append(
                    f"stream {key} got {len(log.ids) - len(set(log.ids))} repeats"
                )
            if log.ids != sorted(log.ids):
                report.problems.append(f"stream {key} out of order")
            if key == "operator":
                continue
            expected = (
                await conn.scalars(
                    select(OutboxEvent.position)
                    .where(OutboxEvent.caregiver_id == uuid.UUID(key))
                    .order_by(OutboxEvent.position)
                )
            ).all()
            if list(expected) != sorted(set(log.ids)):
                missing = set(expected) - set(log.ids)
                report.problems.append(
                    f"stream {key} missed {len(missing)} of {len(expected)} events"
                )
        district_events = await conn.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.district_id.is_not(None))
        )
        if len(set(streams["operator"].ids)) != district_events:
            report.problems.append(
                f"the operator's stream got {len(set(streams['operator'].ids))} of "
                f"{district_events} district events"
            )


def describe(report: Report, plan: Plan) -> list[str]:
    return [
        f"{report.placed} of {plan.orders} orders placed in {report.place_seconds:.2f} s "
        f"({report.orders_per_s:.0f}/s); errors {dict(report.place_errors) or 'none'}",
        f"{len(report.first_offer_ms)} orders offered within {report.dispatch_seconds:.2f} s of "
        f"the first being placed ({report.dispatched_per_s:.0f}/s)",
        f"settled (none pending or offered) {report.settled_seconds:.1f} s after the last was placed; "
        f"final statuses {dict(report.statuses)}",
        f"order to first offer (ms): {summary(report.first_offer_ms)}",
        f"emergency to first offer (ms): {summary(report.emergency_first_offer_ms)}; "
        f"escalated with no one to offer: {dict(report.emergency_escalations) or 'none'}",
        f"orders escalated with no one to offer: {dict(report.unoffered_escalations) or 'none'}",
        f"SSE delivery, event committed to received (ms): {summary(report.delivery_ms)}",
        f"answers: {report.accepted} accepted, {report.declined} declined, "
        f"refused {dict(report.answer_conflicts) or 'none'}",
        "dispatcher takeover after SIGKILL: "
        + ("not tested" if report.takeover_s is None else f"{report.takeover_s:.2f} s"),
        "metrics after the run: "
        + ", ".join(f"{name} {report.metrics.get(name, 0):.0f}" for name in MOVED),
        f"log lines (each one JSON): {report.log_lines}; requests shed with 503 and sent "
        f"again after Retry-After: {report.shed}",
        "problems: " + ("none" if not report.problems else "; ".join(report.problems)),
    ]
