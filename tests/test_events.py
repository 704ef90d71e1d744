"""Live events over a real HTTP server (uvicorn in this process, on loopback): the dispatcher
and the relay run as in production; streams are scoped, resumable, and kept alive."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bench.live import read_sse
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.dispatcher.loop import Dispatcher
from app.main import create_app
from app.models import OutboxEvent
from app.services.sessions import COOKIE_NAME
from app.stream import Hub, Subscriber
from tests.factories import NEAR_HOME, PASSWORD, Person, World


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def live(settings: Settings, clean: None) -> AsyncIterator[AsyncClient]:
    """The whole service on a loopback port, a dispatcher beside it, with quick timers."""
    fast = settings.model_copy(
        update={
            "dispatch_poll_s": 0.2,
            "stream_poll_s": 0.2,
            "stream_keepalive_s": 0.5,
            "stream_recheck_s": 0.2,
            "leader_retry_s": 0.2,
        }
    )
    application = create_app(fast)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    engine = create_engine(fast)
    dispatcher = asyncio.create_task(Dispatcher(create_sessionmaker(engine), fast).run())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)
    async with AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        http.app = application  # type: ignore[attr-defined]
        yield http
    dispatcher.cancel()
    await asyncio.gather(dispatcher, return_exceptions=True)
    await engine.dispose()
    server.should_exit = True
    await task


class Stream:
    """Reads one SSE response: events as dicts (with their id), comments counted."""

    def __init__(self, response: Any) -> None:
        self.events = read_sse(response.aiter_lines())
        self.comments = 0
        self.opened: int | None = None

    async def next(self, wait: float = 10) -> dict[str, Any]:
        return await asyncio.wait_for(self._next(), wait)

    async def _next(self) -> dict[str, Any]:
        async for event in self.events:
            if "comment" in event:
                self.comments += 1
            elif event["type"] == "stream.open":
                self.opened = event["id"]
            else:
                return event
        raise EOFError

    async def until(self, type: str, wait: float = 10) -> dict[str, Any]:
        while True:
            event = await self.next(wait)
            if event["type"] == type:
                return event


@contextlib.asynccontextmanager
async def subscribe(
    http: AsyncClient, who: dict[str, str], last: int | None = None
) -> AsyncIterator[Stream]:
    headers = dict(who)
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    async with http.stream("GET", "/v1/events", headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        yield Stream(r)


async def on_duty(http: AsyncClient, who: Person) -> None:
    await http.put("/v1/caregivers/me/duty", json={"on_duty": True}, headers=who.auth)
    await http.put(
        "/v1/caregivers/me/position",
        json={"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]},
        headers=who.auth,
    )


async def test_everyone_sees_their_part_of_an_order_live(live: AsyncClient, world: World) -> None:
    await on_duty(live, world.nurse)
    async with (
        subscribe(live, world.senior.auth) as senior,
        subscribe(live, world.nurse.auth) as nurse,
        subscribe(live, world.operator_a.auth) as operator,
        subscribe(live, world.neighbour.auth) as neighbour,
        subscribe(live, world.operator_b.auth) as elsewhere,
    ):
        r = await live.post(
            "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
        )
        order_id = r.json()["id"]

        offered = await nurse.until("offer.created")  # the dispatcher ran by itself
        assert offered["data"]["order_id"] == order_id
        assert "address" not in json.dumps(offered)
        r = await live.post(
            f"/v1/offers/{offered['data']['offer_id']}/accept", headers=world.nurse.auth
        )
        assert r.status_code == 200, r.text

        seen = [(await senior.next())["type"] for _ in range(3)]
        assert seen == ["order.placed", "order.offer", "order.accept"]
        assert (await operator.until("order.accept"))["data"]["order_id"] == order_id
        # Nobody else's stream carries it.
        for other in (neighbour, elsewhere):
            with pytest.raises(TimeoutError):
                await other.next(wait=1.0)
        assert elsewhere.comments >= 1  # but idle streams are kept alive


async def test_last_event_id_resumes_without_gaps_or_repeats(
    live: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with subscribe(live, world.senior.auth) as stream:
        await live.post("/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth)
        first = await stream.next()
    # While disconnected: more happens.
    for _ in range(3):
        r = await live.post(
            "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
        )
        await live.post(
            f"/v1/orders/{r.json()['id']}/cancel",
            json={"reason": "changed my mind"},
            headers=world.senior.auth,
        )
    mine: list[int | None] = []
    for _ in range(100):  # until the relay has published them all and dispatch is done
        async with sessionmaker() as session:
            now_mine = list(
                (
                    await session.scalars(
                        select(OutboxEvent.position)
                        .where(OutboxEvent.senior_id == world.senior.id)
                        .order_by(OutboxEvent.position)
                    )
                ).all()
            )
        if None not in now_mine and now_mine == mine:
            break
        mine = now_mine
        await asyncio.sleep(0.3)
    assert len(mine) >= 7  # placed + 3 x (placed, cancelled) at least
    async with subscribe(live, world.senior.auth, last=first["id"]) as resumed:
        ids = []
        with contextlib.suppress(TimeoutError):
            while True:
                ids.append((await resumed.next(wait=0.8))["id"])
    assert ids == [p for p in mine if p is not None and p > first["id"]]


async def test_a_page_follows_its_stream_with_the_session_cookie(
    live: AsyncClient, world: World
) -> None:
    """A browser's EventSource can send no header: the pages' cookie is enough."""
    r = await live.post("/v1/auth/session", json={"login": "13900000001", "password": PASSWORD})
    assert r.status_code == 201, r.text
    cookie = {"Cookie": f"{COOKIE_NAME}={r.cookies[COOKIE_NAME]}"}
    live.cookies.clear()
    async with subscribe(live, cookie) as stream:
        r = await live.post(
            "/v1/orders", json={"service_code": "meal_delivery"}, headers=world.senior.auth
        )
        assert r.status_code == 201, r.text
        placed = await stream.until("order.placed")
        assert placed["data"]["order_id"] == r.json()["id"]


async def test_a_stream_needs_a_login(live: AsyncClient, world: World) -> None:
    r = await live.get("/v1/events")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    for bad in ("abc", b"\xb2", "9" * 25, "-1"):
        r = await live.get("/v1/events", headers={**world.senior.auth, "Last-Event-ID": bad})
        assert r.status_code == 422, bad
        assert r.json()["code"] == "bad_last_event_id"


async def test_a_slow_subscriber_is_cut_off_without_holding_anyone_up(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, world: World
) -> None:
    hub = Hub(sessionmaker, settings.model_copy(update={"stream_queue_size": 10}))
    key = ("senior_id", world.senior.id)
    with hub.subscribe(key) as slow, hub.subscribe(key) as fast:
        for position in range(1, 26):
            event = OutboxEvent(
                id=position,
                type="order.placed",
                senior_id=world.senior.id,
                payload={},
                created_at=datetime.now(UTC),
                position=position,
            )
            hub.fan_out(event)  # never waits
            if position <= 20:
                while not fast.queue.empty():
                    fast.queue.get_nowait()
        assert slow.cut_off
        # What it holds is the oldest ten, none dropped: it sends them, ends, and resumes.
        items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        assert [i.position for i in items] == list(range(1, 11))
        assert not fast.cut_off
        assert fast.queue.qsize() == 5
        assert isinstance(slow, Subscriber)


async def test_a_stream_that_saw_nothing_yet_still_resumes_from_where_it_opened(
    live: AsyncClient, world: World
) -> None:
    async with subscribe(live, world.senior.auth) as stream:
        with pytest.raises(TimeoutError):
            await stream.next(wait=0.5)
        opened = stream.opened
    assert opened is not None
    r = await live.post("/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth)
    async with subscribe(live, world.senior.auth, last=opened) as resumed:
        event = await resumed.next()
    assert event["type"] == "order.placed"
    assert event["data"]["order_id"] == r.json()["id"]


async def test_a_last_event_id_beyond_the_head_resets_the_stream_to_the_head(
    live: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """After a restore the client's id is ahead of the server's: it hears that it must re-read,
    then every new event (not keep-alives for ever)."""
    await live.post("/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth)
    head = 0
    for _ in range(100):  # until the relay has published it
        async with sessionmaker() as session:
            unpublished = await session.scalar(
                select(func.count()).where(OutboxEvent.position.is_(None))
            )
            head = await session.scalar(select(func.max(OutboxEvent.position))) or 0
        if head and not unpublished:
            break
        await asyncio.sleep(0.1)
    assert head > 0
    ahead = head + 1_000
    async with subscribe(live, world.senior.auth, last=ahead) as stream:
        reset = await stream.next()
        assert reset["type"] == "stream.reset"
        assert reset["id"] == head
        assert reset["data"] == {"id": head, "last_event_id": ahead}
        r = await live.post(
            "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
        )
        placed = await stream.until("order.placed")
    assert placed["data"]["order_id"] == r.json()["id"]
    assert head < placed["id"] < ahead


async def test_an_operator_s_cancel_reason_never_reaches_the_senior_s_stream(
    live: AsyncClient, world: World
) -> None:
    async with subscribe(live, world.senior.auth) as stream:
        r = await live.post(
            "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
        )
        order_id = r.json()["id"]
        r = await live.post(
            f"/v1/ops/orders/{order_id}/cancel",
            json={"reason": "Daughter phoned: in hospital with pneumonia"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text
        cancelled = await stream.until("order.cancel")
    assert cancelled["data"]["order_id"] == order_id
    assert cancelled["data"]["status"] == "cancelled"
    assert "pneumonia" not in json.dumps(cancelled)
    r = await live.get(f"/v1/orders/{order_id}", headers=world.senior.auth)
    assert r.json()["cancel_reason"] is None
    assert "pneumonia" not in r.text
