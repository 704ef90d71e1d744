"""Abuse limits (app/services/limits.py): log-in back-off, orders, positions, provider API,
and load shed at once. Each test sets tight limits of its own and moves the API's clock."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from app.config import Settings
from app.deps import get_now
from app.middleware import InFlight
from app.models import Caregiver, Order, RateLimit
from app.services import limits
from tests.conftest import serving
from tests.factories import NEAR_HOME, PASSWORD, World, at, resend_shed
from tests.test_auth import assert_problem, login

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ORDER = {"service_code": "companionship"}


@asynccontextmanager
async def tight(settings: Settings, **limits_: Any) -> AsyncIterator[AsyncClient]:
    async with serving(settings.model_copy(update=limits_)) as http:
        at(http, T0)
        yield http


def assert_limited(r: Response, code: str = "rate_limited") -> int:
    body = assert_problem(r, 429, code)
    wait = int(r.headers["Retry-After"])
    assert wait >= 1
    assert body["retry_after_s"] == wait
    return wait


# --- log-in ----------------------------------------------------------------------------


async def test_failed_log_ins_back_off_exponentially_and_success_resets(
    settings: Settings, world: World
) -> None:
    async with tight(settings, login_backoff_after=5) as http:
        for _ in range(4):
            assert_problem(await login(http, world.senior.login, "wrong"), 401)
        assert_problem(await login(http, world.senior.login, "wrong"), 401)  # the 5th
        # Now blocked for 1 s: even the right password is refused, without being checked.
        assert assert_limited(await login(http, world.senior.login, PASSWORD), "login_backoff") == 1
        at(http, T0 + timedelta(seconds=1))
        assert_problem(await login(http, world.senior.login, "wrong"), 401)  # 6th: 2 s
        assert assert_limited(await login(http, world.senior.login, "wrong"), "login_backoff") == 2
        at(http, T0 + timedelta(seconds=3))
        assert_problem(await login(http, world.senior.login, "wrong"), 401)  # 7th: 4 s
        assert assert_limited(await login(http, world.senior.login, "x"), "login_backoff") == 4
        at(http, T0 + timedelta(seconds=7))
        assert (await login(http, world.senior.login, PASSWORD)).status_code == 200
        # The success forgot the failures: four more are plain 401s again.
        for _ in range(4):
            assert_problem(await login(http, world.senior.login, "wrong"), 401)


async def test_every_written_form_of_a_phone_counts_against_one_login(
    settings: Settings, world: World
) -> None:
    """One number is one account (E.164): writing it another way each time is no way round
    the back-off."""
    digits = world.senior.login.removeprefix("+86")
    forms = [digits, f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}", f"0086{digits}", digits]
    async with tight(settings, login_backoff_after=5) as http:
        for form in forms:
            assert_problem(await login(http, form, "wrong"), 401)
        assert_problem(await login(http, world.senior.login, "wrong"), 401)  # the 5th
        assert_limited(
            await login(http, f"{digits[:3]}-{digits[3:7]}-{digits[7:]}", PASSWORD), "login_backoff"
        )


async def test_an_unknown_login_backs_off_exactly_like_a_registered_one(
    settings: Settings, world: World
) -> None:
    async def run(http: AsyncClient, username: str) -> list[tuple[int, str | None]]:
        seen = []
        for step in range(8):
            at(http, T0 + timedelta(seconds=step))
            r = await login(http, username, "wrong")
            seen.append((r.status_code, r.headers.get("Retry-After")))
        return seen

    async with tight(settings, login_backoff_after=3) as http:
        known = await run(http, world.senior.login)
    async with tight(settings, login_backoff_after=3) as http:
        unknown = await run(http, "13999999999")
    assert known == unknown
    assert {status for status, _ in known} == {401, 429}


async def test_one_client_guessing_many_logins_backs_off_and_a_success_does_not_reset_it(
    settings: Settings, world: World
) -> None:
    async with tight(settings, login_backoff_after=100, login_client_backoff_after=3) as http:
        assert_problem(await login(http, "13900000101", "wrong"), 401)
        assert_problem(await login(http, "13900000102", "wrong"), 401)
        assert (await login(http, world.senior.login, PASSWORD)).status_code == 200
        assert_problem(await login(http, "13900000103", "wrong"), 401)  # the client's 3rd
        assert_limited(await login(http, world.neighbour.login, PASSWORD), "login_backoff")


async def test_the_browser_log_in_backs_off_too(settings: Settings, world: World) -> None:
    async with tight(settings, login_backoff_after=2) as http:
        body = {"login": world.senior.login, "password": "wrong"}
        for _ in range(2):
            assert_problem(await http.post("/v1/auth/session", json=body), 401)
        body["password"] = PASSWORD
        assert_limited(await http.post("/v1/auth/session", json=body), "login_backoff")
        # The token endpoint counts against the same login.
        assert_limited(await login(http, world.senior.login, PASSWORD), "login_backoff")


async def test_stale_rows_are_swept_and_live_ones_kept(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    rule = limits.Rule(count=1, period_s=60)
    async with sessionmaker.begin() as session:
        await limits.allow(session, "old", rule, now=T0)
        await limits.login_failed(session, settings, login="x", client="c", now=T0)
        await limits.allow(session, "new", rule, now=T0 + timedelta(hours=2))
    later = T0 + timedelta(hours=2)
    async with sessionmaker.begin() as session:
        assert await limits.sweep(session, settings, now=later) == 3
        assert await limits.allow(session, "new", rule, now=later) > 0  # still limited


async def test_the_pages_log_in_form_says_to_wait(settings: Settings, world: World) -> None:
    async with tight(settings, login_backoff_after=1) as http:
        form = {"login": world.senior.login, "password": "wrong", "next": "/app"}
        headers = {"Sec-Fetch-Site": "same-origin", "Accept-Language": "en"}
        r = await http.post("/login", data=form, headers=headers)
        assert r.status_code == 401
        r = await http.post("/login", data=form, headers=headers)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert "Too many tries" in r.text


async def test_the_back_off_keeps_no_login_and_takes_any_text(
    settings: Settings, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with tight(settings, login_backoff_after=1) as http:
        for typed in ("1390\x000001", world.senior.login, "x" * 5000):
            assert_problem(await login(http, typed, "wrong"), 401)
            assert_limited(await login(http, typed, "wrong"), "login_backoff")
    async with sessionmaker() as session:
        keys = (await session.scalars(select(RateLimit.key))).all()
    assert keys
    assert not any(world.senior.login in key or "127.0.0.1" in key for key in keys)


# --- orders, positions, providers ------------------------------------------------------


async def count_orders(sessionmaker: async_sessionmaker[AsyncSession], world: World) -> int:
    async with sessionmaker() as session:
        found = await session.scalar(
            select(func.count()).select_from(Order).where(Order.senior_id == world.senior.id)
        )
        return int(found or 0)


async def test_a_flood_of_orders_is_refused_but_an_sos_always_gets_through(
    settings: Settings, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with tight(settings, order_rate_count=3, order_rate_period_s=600) as http:
        for _ in range(3):
            r = await http.post("/v1/orders", json=ORDER, headers=world.senior.auth)
            assert r.status_code == 201, r.text
        wait = assert_limited(await http.post("/v1/orders", json=ORDER, headers=world.senior.auth))
        assert wait == 200  # one more every 600/3 s
        assert await count_orders(sessionmaker, world) == 3  # nothing saved
        r = await http.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 201, r.text
        assert (await http.post("/v1/sos", headers=world.senior.auth)).status_code == 200
        assert_limited(await http.post("/v1/orders", json=ORDER, headers=world.senior.auth))
        # Another senior is not held up by this one.
        r = await http.post("/v1/orders", json=ORDER, headers=world.neighbour.auth)
        assert r.status_code == 201
        at(http, T0 + timedelta(seconds=wait))
        r = await http.post("/v1/orders", json=ORDER, headers=world.senior.auth)
        assert r.status_code == 201, r.text


async def test_extra_position_fixes_are_dropped_with_200_and_the_phone_carries_on(
    settings: Settings, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    url = "/v1/caregivers/me/position"
    lat, lon = NEAR_HOME
    async with tight(settings, position_rate_count=2, position_rate_period_s=10) as http:
        for step in range(2):
            fix = {"lat": lat, "lon": lon + step * 0.001}
            r = await http.put(url, json=fix, headers=world.nurse.auth)
            assert r.status_code == 200, r.text
            assert "Doorstep-Position" not in r.headers
        r = await http.put(url, json={"lat": lat, "lon": lon + 0.01}, headers=world.nurse.auth)
        assert r.status_code == 200, r.text
        assert r.headers["Doorstep-Position"] == "dropped"
        async with sessionmaker() as session:
            kept = await session.get(Caregiver, world.nurse.id)
            assert kept is not None
            assert kept.lon == pytest.approx(lon + 0.001)
        at(http, T0 + timedelta(seconds=5))  # one fix every 10/2 s
        r = await http.put(url, json={"lat": lat, "lon": lon + 0.02}, headers=world.nurse.auth)
        assert "Doorstep-Position" not in r.headers
        async with sessionmaker() as session:
            kept = await session.get(Caregiver, world.nurse.id)
            assert kept is not None
            assert kept.lon == pytest.approx(lon + 0.02)


async def test_a_provider_beyond_its_rate_is_answered_429(settings: Settings, world: World) -> None:
    async with tight(settings, provider_rate_count=2, provider_rate_period_s=60) as http:
        for _ in range(2):
            r = await http.get("/v1/provider/caregivers", headers=world.provider_a_headers)
            assert r.status_code == 200, r.text
        r = await http.get("/v1/provider/visits", headers=world.provider_a_headers)
        assert assert_limited(r) == 30
        r = await http.get("/v1/provider/caregivers", headers={"X-API-Key": world.provider_b_key})
        assert r.status_code == 200


async def test_concurrent_hits_let_exactly_the_limit_through(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """N units of work hit one key at once, each on its own connection: exactly ``count``
    are allowed (PostgreSQL: the upsert locks the row and re-checks; SQLite: one writer)."""
    rule = limits.Rule(count=5, period_s=60)
    start = asyncio.Event()

    async def one() -> int:
        await start.wait()
        for _ in range(50):  # SQLite's write lock may outlast its busy timeout on a busy box
            try:
                async with sessionmaker() as session, session.begin():
                    return await limits.allow(session, "concurrent", rule, now=T0)
            except Exception as error:
                if "locked" not in str(error):
                    raise
        raise AssertionError("never got the write lock")

    tasks = [asyncio.create_task(one()) for _ in range(8)]
    start.set()
    waits = await asyncio.gather(*tasks)
    assert sorted(waits).count(0) == 5
    assert all(wait == 12 for wait in waits if wait)


@pytest.mark.postgres_only
async def test_concurrent_orders_of_one_senior_let_exactly_the_limit_through(
    settings: Settings, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with tight(settings, order_rate_count=4, order_rate_period_s=600) as http:
        sent = await asyncio.gather(
            *(http.post("/v1/orders", json=ORDER, headers=world.senior.auth) for _ in range(12))
        )
        answers = await resend_shed(http, list(sent))
    assert sorted(r.status_code for r in answers) == [201] * 4 + [429] * 8
    assert await count_orders(sessionmaker, world) == 4


# --- load answered at once ---------------------------------------------------------------


def _held_app(release: asyncio.Event, started: asyncio.Event, *, stream: bool = False) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = b"text/event-stream" if stream and scope["path"] == "/v1/events" else b"text/plain"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]}
        )
        if scope["path"] in {"/slow", "/v1/events"}:
            started.set()
            await release.wait()
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def test_a_saturated_worker_answers_503_at_once_but_probes_still_pass() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    middleware = InFlight(_held_app(release, started), limit=1)
    async with AsyncClient(transport=ASGITransport(app=middleware), base_url="http://t") as http:
        slow = asyncio.create_task(http.get("/slow"))
        await started.wait()
        r = await http.get("/fast")
        assert_problem(r, 503, "saturated")
        assert r.headers["Retry-After"] == "1"
        assert (await http.get("/healthz")).status_code == 200
        release.set()
        assert (await slow).status_code == 200
        assert (await http.get("/fast")).status_code == 200
    assert middleware.serving == 0


async def test_an_open_event_stream_does_not_count_as_in_flight() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    middleware = InFlight(_held_app(release, started, stream=True), limit=1)
    async with AsyncClient(transport=ASGITransport(app=middleware), base_url="http://t") as http:
        stream = asyncio.create_task(http.get("/v1/events"))
        await started.wait()
        assert middleware.serving == 0
        assert (await http.get("/fast")).status_code == 200
        release.set()
        await stream
    assert middleware.serving == 0


async def test_the_app_sheds_beyond_max_in_flight(settings: Settings, world: World) -> None:
    release, started = asyncio.Event(), asyncio.Event()

    async def held_clock() -> datetime:
        started.set()
        await release.wait()
        return T0

    async with tight(settings, max_in_flight=1) as http:
        http.app.dependency_overrides[get_now] = held_clock  # type: ignore[attr-defined]
        held = asyncio.create_task(http.get("/v1/orders", headers=world.senior.auth))
        await started.wait()
        r = await http.get("/v1/services", headers=world.senior.auth)
        assert_problem(r, 503, "saturated")
        assert r.headers["Retry-After"] == "1"
        assert "X-Request-ID" in r.headers
        assert (await http.get("/healthz")).status_code == 200
        release.set()
        assert (await held).status_code == 200
        assert (await http.get("/v1/services", headers=world.senior.auth)).status_code == 200
