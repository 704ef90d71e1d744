"""What operators see: JSON logs with the request's id and the caller's role and no personal
data, Prometheus metrics that move, 503 + Retry-After when the database is saturated, and
LISTEN connections that come back by themselves."""

import asyncio
import contextlib
import io
import json
import logging
import logging.config
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import Request
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import logs, metrics
from app.bench.live import read_sse
from app.config import Settings
from app.db import create_engine, session_scope
from app.deps import SessionDep
from app.main import create_app
from app.models import Account, Order, OutboxEvent, Senior
from app.pglisten import Listener
from app.stream import relay_once
from tests.conftest import DATABASE_URL, IS_POSTGRES
from tests.factories import PASSWORD, World

BASE = "http://doorstep.test"


@contextlib.asynccontextmanager
async def serving(settings: Settings, **transport: Any) -> AsyncIterator[AsyncClient]:
    """An app of its own (its own settings, lifespan and pool) behind an in-process client."""
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application, **transport), base_url=BASE) as http,
    ):
        http.app = application  # type: ignore[attr-defined]
        await asyncio.wait_for(application.state.hub.ready.wait(), 10)
        yield http


def sample(exposition: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


async def scrape(http: AsyncClient, **headers: str) -> str:
    r = await http.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


# --- logs ----------------------------------------------------------------------------------


@pytest.fixture
def captured_logs(settings: Settings) -> Iterator[Callable[..., str]]:
    """The process's logging as ``doorstep serve`` sets it up (DEBUG, SQL echo on), its
    handler writing to a buffer; returns a function that reads (and clears) what was logged,
    optionally after setting logging up again with other settings."""
    touched = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy.engine", "aiosqlite"]
    saved = {
        name: (logging.getLogger(name).level, logging.getLogger(name).handlers[:])
        for name in touched
    }
    buffer = io.StringIO()

    def configure(**update: Any) -> None:
        wanted = {"log_level": "DEBUG", "db_echo": True, **update}
        logging.config.dictConfig(logs.uvicorn_log_config(settings.model_copy(update=wanted)))
        ours = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
        assert len(ours) == 1
        ours[0].setStream(buffer)

    configure()

    def read(**reconfigure: Any) -> str:
        if reconfigure:
            configure(**reconfigure)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield read
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers


def parse(err: str) -> list[dict[str, Any]]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


async def test_logs_are_json_lines_with_request_id_and_role_and_no_personal_data(
    client: AsyncClient, world: World, captured_logs: Callable[..., str]
) -> None:
    secret_note = "Key under the flowerpot, flat 3B, door code 4471"
    r = await client.post(
        "/v1/auth/token", data={"username": world.senior.login, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    placed = await client.post(
        "/v1/orders",
        json={"service_code": "cleaning", "notes": secret_note},
        headers={**auth, "X-Request-ID": "trace-0001"},
    )
    assert placed.status_code == 201, placed.text
    assert placed.headers["x-request-id"] == "trace-0001"
    order_id = placed.json()["id"]
    shown = await client.get(f"/v1/orders/{order_id}", headers=auth)
    assert shown.status_code == 200
    generated = shown.headers["x-request-id"]
    await client.get("/v1/auth/me", headers={"Authorization": "Bearer not-a-token"})

    err = captured_logs()
    records = parse(err)
    for record in records:
        assert {"timestamp", "level", "logger", "message", "request_id", "role"} <= record.keys()
        stamp = datetime.fromisoformat(record["timestamp"])
        assert stamp.utcoffset() is not None
        assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    # Nothing that names, locates or lets anyone in: the senior's phone (their login), name,
    # address, care notes, the order's notes, the password, the tokens.
    for secret in (
        world.senior.login,
        world.senior.login.removeprefix("+86"),  # the number in any written form
        "Senior 0001",
        "Laodong Road",
        "diabetes",
        secret_note,
        "flowerpot",
        PASSWORD,
        token,
        world.senior.token,
    ):
        assert secret not in err, secret

    access = [r for r in records if r["logger"] == logs.ACCESS_LOGGER]
    by_id = {r["request_id"]: r for r in access}
    placing = by_id["trace-0001"]
    assert (placing["method"], placing["route"], placing["status"]) == ("POST", "/v1/orders", 201)
    assert placing["role"] == "senior"
    assert placing["account_id"] == str(world.senior.id)
    assert placing["duration_ms"] >= 0
    reading = by_id[generated]
    assert reading["route"] == "/v1/orders/{order_id}"  # the template, never the id
    assert order_id not in json.dumps(reading)
    assert len(generated) >= 16
    login = next(r for r in access if r["route"] == "/v1/auth/token")
    assert login["role"] is None
    assert login["status"] == 200
    refused = next(r for r in access if r["route"] == "/v1/auth/me")
    assert refused["status"] == 401
    assert refused["role"] is None
    assert len({r["request_id"] for r in access}) == len(access) == 4
    # Libraries' lines carry the request they belong to (the SQL echo, with its parameters
    # hidden).
    sql = [r for r in records if r["logger"].startswith("sqlalchemy.engine")]
    assert any(r["request_id"] == "trace-0001" and r["role"] == "senior" for r in sql)


async def test_a_request_id_is_taken_only_if_it_is_sane(client: AsyncClient) -> None:
    for sane in ("a", "0f8fad5b-d9cb-469f-a165-70867728950e", "Root=1-5759e988:x/y+z_.", "x" * 128):
        r = await client.get("/healthz", headers={"X-Request-ID": sane})
        assert r.headers["x-request-id"] == sane
    for insane in (b"", b"x" * 129, b"has space", b"semi;colon", "ünï".encode(), b"<script>"):
        r = await client.get("/healthz", headers={"X-Request-ID": insane})
        assert r.headers["x-request-id"].encode() != insane
        assert len(r.headers["x-request-id"]) == 32


async def test_an_unhandled_error_is_logged_with_its_request_and_answered_with_its_id(
    settings: Settings, clean: None, captured_logs: Callable[..., str]
) -> None:
    async with serving(settings, raise_app_exceptions=False) as http:

        @http.app.get("/test/boom")  # type: ignore[attr-defined]
        async def boom() -> None:
            raise RuntimeError("something broke")

        r = await http.get("/test/boom", headers={"X-Request-ID": "boom-1"})
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error"
    assert r.headers["x-request-id"] == "boom-1"
    records = parse(captured_logs())
    error = next(r for r in records if r["message"] == "unhandled error")
    assert error["request_id"] == "boom-1"
    assert error["level"] == "ERROR"
    assert "RuntimeError: something broke" in error["exception"]
    access = next(r for r in records if r["logger"] == logs.ACCESS_LOGGER)
    assert (access["request_id"], access["status"]) == ("boom-1", 500)


async def test_text_logs_for_people_carry_the_same_context(
    client: AsyncClient, world: World, captured_logs: Callable[..., str]
) -> None:
    captured_logs(log_format="text", log_level="INFO", db_echo=False)
    await client.get("/v1/auth/me", headers={**world.senior.auth, "X-Request-ID": "human-1"})
    lines = [line for line in captured_logs().splitlines() if "human-1" in line]
    assert len(lines) == 1
    assert "INFO doorstep.access [human-1 senior] GET /v1/auth/me 200" in lines[0]
    assert lines[0][:24].endswith("Z")


async def test_tracebacks_withhold_the_values_the_database_quotes(
    sessionmaker: async_sessionmaker[AsyncSession], world: World
) -> None:
    with pytest.raises(IntegrityError) as caught:
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Account)
                .where(Account.id == world.neighbour.id)
                .values(login=world.senior.login)
            )
    told = logs.format_exception(caught.value)
    assert "IntegrityError" in told
    assert "UPDATE account SET login" in told  # the statement, with placeholders only
    assert world.senior.login not in told  # PostgreSQL's DETAIL quotes it
    assert str(world.neighbour.id) not in told
    assert world.neighbour.id.hex not in told
    if IS_POSTGRES:
        assert "SQLSTATE 23505" in told
    # The logging path renders it the same way.
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    record.exc_info = (type(caught.value), caught.value, caught.value.__traceback__)
    assert world.senior.login not in logs.JsonFormatter().format(record)


async def test_a_database_error_in_a_request_logs_no_bound_parameter(
    settings: Settings, clean: None, world: World, captured_logs: Callable[..., str]
) -> None:
    """A statement that fails with a senior's phone, address, care note and emergency contact
    in its parameters: neither the SQL echo, nor the error's log line, nor its traceback
    carries any of them (``hide_parameters`` on every engine, PostgreSQL's DETAIL withheld)."""
    note = "Insulin 8 units at 07:30, spare key with Mrs Wang"
    address = "Flat 1204, 77 Zaoyuan Road"
    contact = {"name": "Zhao Lei", "phone": "13911112222", "relation": "daughter"}
    async with serving(settings, raise_app_exceptions=False) as http:

        @http.app.post("/test/clash")  # type: ignore[attr-defined]
        async def clash(session: SessionDep) -> None:
            await session.execute(
                update(Senior)
                .where(Senior.phone == world.neighbour.login)
                .values(
                    phone=world.senior.login,  # taken: a unique violation
                    care_notes=note,
                    address=address,
                    emergency_contacts=[contact],
                )
            )

        r = await http.post("/test/clash", headers={"X-Request-ID": "clash-1"})
    assert r.status_code == 500
    err = captured_logs()
    records = parse(err)
    failed = next(r for r in records if r["message"] == "unhandled error")
    assert failed["request_id"] == "clash-1"
    assert "IntegrityError" in failed["exception"]
    echoed = [r for r in records if r["logger"].startswith("sqlalchemy.engine")]
    assert any("UPDATE senior SET" in r["message"] for r in echoed)
    for secret in (note, "Insulin", address, "Zaoyuan", contact["name"], contact["phone"]):
        assert secret not in err, secret
    assert world.senior.login not in err
    assert world.neighbour.login not in err


def test_every_engine_hides_its_parameters(settings: Settings) -> None:
    """The API's, the dispatcher's (a longer pool timeout) and the migrations' engines all come
    from ``create_engine``: each hides bound parameters from logs and error messages."""
    for engine in (create_engine(settings), create_engine(settings, pool_timeout_s=30)):
        assert engine.sync_engine.hide_parameters
    migrations_env = (Path(__file__).parent.parent / "migrations" / "env.py").read_text()
    assert "create_engine(_settings())" in migrations_env
    app_code = Path(__file__).parent.parent / "app"
    builders = [
        path
        for path in app_code.rglob("*.py")
        if "create_async_engine(" in path.read_text()
        or "sqlalchemy.create_engine" in path.read_text()
    ]
    assert builders == [app_code / "db.py"]


async def test_the_access_log_never_carries_a_search_for_a_senior_s_name(
    client: AsyncClient, world: World, captured_logs: Callable[..., str]
) -> None:
    """Operators search seniors by name or phone (``?q=``): the access line names the route
    only, and the SQL echo hides the search's parameters, in both log formats."""
    name = "Wang Guifang"
    for log_format in ("json", "text"):
        captured_logs(log_format=log_format)  # set up again (SQL echo on) and cleared
        for query in (name, world.senior.login):
            r = await client.get(
                "/v1/ops/seniors", params={"q": query}, headers=world.operator_a.auth
            )
            assert r.status_code == 200, r.text
        told = captured_logs()
        access = [line for line in told.splitlines() if logs.ACCESS_LOGGER in line]
        assert len(access) == 2, told
        assert all("GET /v1/ops/seniors 200" in line for line in access)
        for secret in (name, "Wang", "Guifang", "q=", world.senior.login):
            assert secret not in told, (log_format, secret)


# --- metrics -------------------------------------------------------------------------------


async def test_metrics_parse_and_move_with_requests_orders_streams_and_the_pool(
    client: AsyncClient, world: World
) -> None:
    me = {"method": "GET", "route": "/v1/auth/me", "status_class": "2xx"}
    count = "doorstep_http_request_duration_seconds_count"
    before = sample(await scrape(client), count, **me) or 0.0
    for _ in range(3):
        assert (await client.get("/v1/auth/me", headers=world.senior.auth)).status_code == 200
    placed = await client.post(
        "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
    )
    order_id = placed.json()["id"]
    await client.get(f"/v1/orders/{order_id}", headers=world.senior.auth)
    await client.get(f"/nowhere/{order_id}")

    exposition = await scrape(client)
    assert sample(exposition, count, **me) == before + 3
    assert sample(exposition, count, method="POST", route="/v1/orders", status_class="2xx")
    assert sample(exposition, count, route="/v1/orders/{order_id}", status_class="2xx")
    assert sample(exposition, count, route="<unmatched>", status_class="4xx")
    assert order_id not in exposition  # labels are templates, never ids or raw paths
    # Figures read from the database at scrape time.
    assert sample(exposition, "doorstep_orders", status="pending") == 1
    assert sample(exposition, "doorstep_orders", status="completed") == 0
    assert (sample(exposition, "doorstep_outbox_unpublished_events") or 0) >= 1
    assert (sample(exposition, "doorstep_outbox_oldest_unpublished_age_seconds") or -1) >= 0
    families = {f.name for f in text_string_to_metric_families(exposition)}
    for name in (
        "doorstep_dispatch_pass_duration_seconds",
        "doorstep_order_to_first_offer_seconds",
        "doorstep_sos_to_first_offer_seconds",
        "doorstep_offers_expired",
        "doorstep_escalations",
        "doorstep_outbox_lag_seconds",
        "doorstep_listen_reconnects",
    ):
        assert name in families, name

    application = client.app  # type: ignore[attr-defined]
    hub = application.state.hub
    streams = sample(exposition, "doorstep_sse_subscribers") or 0.0
    with hub.subscribe(("senior_id", world.senior.id)):
        assert sample(await scrape(client), "doorstep_sse_subscribers") == streams + 1
    assert sample(await scrape(client), "doorstep_sse_subscribers") == streams

    in_use = "doorstep_db_pool_connections_in_use"
    async with application.state.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        holding = sample(await scrape(client), in_use, process="api")
    released = sample(await scrape(client), in_use, process="api")
    assert holding is not None
    assert released is not None
    assert holding == released + 1


async def test_the_relay_records_how_long_events_waited(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    lag = "doorstep_outbox_lag_seconds_count"
    before = sample(await scrape(client), lag) or 0.0
    await client.post("/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth)
    async with sessionmaker() as session:  # a relay batch that rolls back publishes nothing
        await relay_once(session, now=datetime.now(UTC))
        await session.rollback()
    assert sample(await scrape(client), lag) == before
    async with sessionmaker() as session, session.begin():
        published = await relay_once(session, now=datetime.now(UTC))
    assert published >= 1
    exposition = await scrape(client)
    assert sample(exposition, lag) == before + published
    assert sample(exposition, "doorstep_outbox_unpublished_events") == 0


async def test_metrics_need_the_token_when_one_is_set(settings: Settings, clean: None) -> None:
    token = "metrics-token-for-the-test-0001"
    async with serving(settings.model_copy(update={"metrics_token": SecretStr(token)})) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-000000000"}):
            r = await http.get("/metrics", headers=headers)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "invalid_metrics_token"
        assert "doorstep_orders" in await scrape(http, Authorization=f"Bearer {token}")
    with pytest.raises(ValueError, match="at least 16"):
        Settings(env="test", metrics_token="short")


@pytest.mark.pure
def test_escalation_reasons_are_a_fixed_set() -> None:
    from app.dispatch.constraints import Exclusion

    assert {e.value for e in Exclusion} <= metrics.ESCALATION_REASONS
    before = metrics.ESCALATIONS.labels("other")._value.get()
    metrics.count_escalation("No caregiver of the district is on duty with a known position.")
    assert metrics.ESCALATIONS.labels("other")._value.get() == before + 1
    labels = {s.labels.get("reason") for m in metrics.ESCALATIONS.collect() for s in m.samples}
    assert labels <= metrics.ESCALATION_REASONS


MULTIPROCESS_SCRIPT = """
import multiprocessing, os, sys

def worker(clean_exit):
    from app import metrics
    metrics.observe_request("GET", "/v1/auth/me", 200, 0.02)
    metrics.count_escalation("skill")
    metrics.SSE_SUBSCRIBERS.inc()
    if clean_exit:
        metrics.mark_process_dead()

if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    from app import metrics  # creates the directory: the launcher need not
    shared = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    # Left by a previous run (a pid above the kernel's limit: never alive).
    stale = os.path.join(shared, "counter_4194999.db")
    open(stale, "wb").close()
    metrics.prepare_multiprocess_dir(shared)
    assert not os.path.exists(stale)
    context = multiprocessing.get_context("spawn")
    for clean_exit in (True, False):  # the second dies with its live gauge left behind
        process = context.Process(target=worker, args=(clean_exit,))
        process.start()
        process.join()
        assert process.exitcode == 0, process.exitcode
    metrics.SSE_SUBSCRIBERS.inc()  # this process is alive: its stream counts
    sys.stdout.write(metrics.render().decode())
"""


@pytest.mark.pure
def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"  # not there yet
    script = tmp_path / "processes.py"  # a file: spawned children import their main module
    script.write_text(MULTIPROCESS_SCRIPT)
    result = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, str(script)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    exposition = result.stdout
    count = "doorstep_http_request_duration_seconds_count"
    assert sample(exposition, count, route="/v1/auth/me", status_class="2xx") == 2
    assert sample(exposition, "doorstep_escalations_total", reason="skill") == 2
    assert sample(exposition, "doorstep_sse_subscribers") == 1  # the dead ones' left the sum


# --- a saturated database: 503 with Retry-After, never a long wait and a 500 ----------------


@pytest.mark.postgres_only
async def test_an_exhausted_pool_answers_503_with_retry_after_within_a_second(
    settings: Settings, world: World
) -> None:
    tight = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "stream_poll_s": 60}
    )
    assert tight.db_pool_timeout_s == 1.0  # the default under test
    async with serving(tight) as http:
        engine = http.app.state.engine  # type: ignore[attr-defined]
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            started = time.monotonic()
            r = await http.get("/v1/auth/me", headers=world.senior.auth)
            waited = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "overloaded"
            assert waited < 2.0
            started = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200  # never touches the pool
            assert time.monotonic() - started < 0.5
        r = await http.get("/v1/auth/me", headers=world.senior.auth)
        assert r.status_code == 200


@pytest.mark.skipif(IS_POSTGRES, reason="SQLite's write lock (PostgreSQL: the pool test)")
async def test_a_held_sqlite_write_lock_answers_503_not_500_and_saves_nothing(
    settings: Settings, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    quick = settings.model_copy(update={"sqlite_busy_timeout_ms": 200})
    body = {"service_code": "cleaning", "notes": "ring twice"}
    headers = {**world.senior.auth, "Idempotency-Key": str(uuid.uuid4())}
    async with serving(quick) as http:
        blocker = sqlite3.connect(DATABASE_URL.split("///", 1)[1], isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            started = time.monotonic()
            r = await http.post("/v1/orders", json=body, headers=headers)
            assert time.monotonic() - started < 2.0
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "busy"
            assert r.headers["retry-after"] == "1"
            assert (await http.get("/healthz")).status_code == 200
        finally:
            blocker.rollback()
            blocker.close()
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Order)) == 0
        r = await http.post("/v1/orders", json=body, headers=headers)  # the retry
        assert r.status_code == 201, r.text


async def test_a_503_never_hides_a_committed_unit_of_work(settings: Settings, clean: None) -> None:
    async with serving(settings, raise_app_exceptions=False) as http:
        application = http.app  # type: ignore[attr-defined]

        @application.get("/test/shed")
        async def shed() -> None:
            raise PoolTimeoutError("no connection in time")

        @application.get("/test/after-commit")
        async def after_commit(request: Request) -> None:
            async for session in session_scope(request.app.state.sessionmaker):
                await session.execute(text("SELECT 1"))
            raise PoolTimeoutError("no connection in time")

        r = await http.get("/test/shed")
        assert (r.status_code, r.json()["code"]) == (503, "overloaded")
        # Something committed: "try again, nothing happened" would be untrue.
        r = await http.get("/test/after-commit")
        assert r.status_code == 500
        assert "retry-after" not in r.headers


async def test_health_never_touches_the_database(client: AsyncClient) -> None:
    application = client.app  # type: ignore[attr-defined]
    saved = application.state.engine, application.state.sessionmaker
    application.state.engine = application.state.sessionmaker = None
    try:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    finally:
        application.state.engine, application.state.sessionmaker = saved


# --- LISTEN connections that come back ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def publish(sessionmaker: async_sessionmaker[AsyncSession], senior_id: uuid.UUID) -> int:
    """Commit one event for the senior's stream and relay it (NOTIFY on PostgreSQL)."""
    async with sessionmaker() as session, session.begin():
        event = OutboxEvent(type="test.ping", senior_id=senior_id, payload={})
        session.add(event)
    async with sessionmaker() as session, session.begin():
        await relay_once(session, now=datetime.now(UTC))
    async with sessionmaker() as session:
        position = await session.scalar(
            select(OutboxEvent.position).where(OutboxEvent.id == event.id)
        )
    assert position is not None
    return position


@pytest.mark.postgres_only
async def test_the_hub_listens_again_after_its_connection_is_terminated(
    settings: Settings, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # Polling every minute: an event that arrives within seconds came by NOTIFY (or by the
    # catch-up read after a reconnect), never by the poll.
    slow_poll = settings.model_copy(update={"stream_poll_s": 60, "stream_keepalive_s": 0.5})
    application = create_app(slow_poll)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
    )
    serving_task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.02)
        hub = application.state.hub
        await asyncio.wait_for(hub.ready.wait(), 10)
        listener = hub.listener
        assert listener is not None
        assert listener.connected.is_set()
        async with (
            AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
            http.stream("GET", "/v1/events", headers=world.senior.auth) as response,
        ):
            assert response.status_code == 200
            events = read_sse(response.aiter_lines())

            async def arrives(position: int, within: float) -> None:
                async def wait() -> None:
                    async for event in events:
                        if event.get("type") == "test.ping" and event["id"] == position:
                            return

                await asyncio.wait_for(wait(), within)

            await arrives(await publish(sessionmaker, world.senior.id), 3)

            old_pid = listener.server_pid
            listener.backoff_min_s = 1.0  # time to publish while nobody listens
            # This hub's own connection: other tests' hubs in this process share its name.
            async with sessionmaker() as session:
                killed = await session.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = :name AND pid = :pid"
                    ),
                    {"name": listener.application_name, "pid": old_pid},
                )
            assert killed == 1
            for _ in range(250):  # a loaded CI machine: within 5 s, not the 60 s poll
                if not listener.connected.is_set():
                    break
                await asyncio.sleep(0.02)
            assert not listener.connected.is_set()  # the loss was noticed
            # Published while the hub is deaf: its NOTIFY is lost, the catch-up brings it.
            missed = await publish(sessionmaker, world.senior.id)
            await arrives(missed, 15)
            assert listener.connected.is_set()
            assert listener.reconnects == 1
            assert listener.server_pid != old_pid
            # And the new connection hears the next one at once.
            await arrives(await publish(sessionmaker, world.senior.id), 10)
    finally:
        server.should_exit = True
        await serving_task


@pytest.mark.pure
async def test_a_listener_without_a_server_keeps_trying_quietly() -> None:
    tries = 0
    listener = Listener(
        "postgresql://postgres@127.0.0.1:1/nothing",
        ["doorstep_published"],
        on_notify=lambda _c, _p: None,
        name="test",
        backoff_min_s=0.01,
        backoff_max_s=0.05,
    )
    connect = listener._connect

    async def counting() -> Any:
        nonlocal tries
        tries += 1
        return await connect()

    listener._connect = counting  # type: ignore[method-assign]
    task = asyncio.create_task(listener.run())
    await asyncio.sleep(0.5)
    assert not task.done()  # it never gives up (nor raises)
    assert not listener.connected.is_set()
    assert tries >= 3
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
