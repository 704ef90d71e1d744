"""The order's life as a state machine (hypothesis): seniors place, replay, cancel and rate
orders and press SOS; the dispatcher passes with a moving clock; caregivers accept and decline
offers, check in and out, withdraw; an operator assigns by hand. After every step, DESIGN.md's
invariants hold on what the database holds:

1. an order has at most one active visit and one accepted offer;
2. a caregiver's active visits never overlap;
3. no order is lost or stuck: each open order is waiting for dispatch, offered with an open
   offer and a deadline, assigned or under way with its one active visit, or escalated — and a
   closed one holds no open offer or active visit;
4. every transition left exactly one outbox event (history and outbox agree, order by order);
5. an order placed again with the same Idempotency-Key is the same order;
6. a senior's list holds only her own orders;
and no answer is ever a 5xx. One database proves the logic (SQLite; the races are proven by the
concurrent tests on PostgreSQL), so this runs in the SQLite pass only.
"""

import asyncio
import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import Base, create_engine, create_sessionmaker
from app.main import create_app
from app.models import Offer, Order, OrderStatusHistory, OutboxEvent, Visit
from app.models.offer import OfferStatus
from app.models.order import OrderStatus
from app.services.dispatch import run_once
from tests.conftest import IS_POSTGRES, KEEP
from tests.factories import HOME, NEAR_HOME, Person, World, at, build_world

pytestmark = pytest.mark.skipif(IS_POSTGRES, reason="logic proven once, on SQLite")

OPEN_VISIT = ("assigned", "in_progress")
SERVICES = ("meal_delivery", "bathing", "cleaning", "companionship")


class Harness:
    """One event loop, engine and app for the whole run; tables emptied for each example."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine = create_engine(settings)
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def reset(self) -> None:
        tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP]
        async with self.engine.begin() as conn:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (names from metadata)

    def close(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()


class OrderLife(RuleBasedStateMachine):
    harness: Harness

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        h = self.harness
        h.run(h.reset())
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.world: World = h.run(build_world(h.sessionmaker, h.settings, now=self.now))
        self.app = create_app(h.settings)
        self.lifespan = self.app.router.lifespan_context(self.app)
        h.run(self.lifespan.__aenter__())
        self.http = AsyncClient(transport=ASGITransport(app=self.app), base_url="http://t")
        self.http.app = self.app  # type: ignore[attr-defined]
        at(self.http, self.now)
        self.keys: dict[str, tuple[str, dict[str, Any], Person]] = {}
        self.owner: dict[str, uuid.UUID] = {}

    def teardown(self) -> None:
        h = self.harness
        h.run(self.http.aclose())
        h.run(self.lifespan.__aexit__(None, None, None))

    # --- calls ----------------------------------------------------------------------------

    def call(
        self, method: str, url: str, who: Person, key: str | None = None, **kwargs: Any
    ) -> Response:
        headers = who.auth | ({"Idempotency-Key": key} if key else {})
        r: Response = self.harness.run(self.http.request(method, url, headers=headers, **kwargs))
        assert r.status_code < 500, (method, url, r.status_code, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", r.text
        return r

    @property
    def caregivers(self) -> list[Person]:
        return [self.world.nurse, self.world.helper]

    @property
    def seniors(self) -> list[Person]:
        return [self.world.senior, self.world.neighbour]

    # --- rules ----------------------------------------------------------------------------

    @initialize()
    def on_duty(self) -> None:
        for who in self.caregivers:
            self.call("PUT", "/v1/caregivers/me/duty", who, json={"on_duty": True})
            self.report_position(who)

    def report_position(self, who: Person) -> None:
        self.call(
            "PUT",
            "/v1/caregivers/me/position",
            who,
            json={"lat": NEAR_HOME[0], "lon": NEAR_HOME[1], "recorded_at": self.now.isoformat()},
        )

    @rule(
        target=orders,
        senior=st.sampled_from([0, 1]),
        service=st.sampled_from(SERVICES),
        asap=st.booleans(),
    )
    def place(self, senior: int, service: str, asap: bool) -> str:
        who = self.seniors[senior]
        body: dict[str, Any] = {"service_code": service, "notes": "Ring twice"}
        if not asap:
            start = self.now + timedelta(hours=3)
            body |= {
                "window_start": start.isoformat(),
                "window_end": (start + timedelta(hours=3)).isoformat(),
            }
        key = str(uuid.uuid4())
        r = self.call("POST", "/v1/orders", who, json=body, key=key)
        assert r.status_code == 201, r.text
        order_id: str = r.json()["id"]
        self.keys[key] = (order_id, body, who)
        self.owner[order_id] = who.id
        return order_id

    @rule(senior=st.sampled_from([0, 1]))
    def sos(self, senior: int) -> None:
        who = self.seniors[senior]
        r = self.call("POST", "/v1/sos", who, json={})
        assert r.status_code in (200, 201), r.text
        self.owner[r.json()["id"]] = who.id

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        if not self.keys:
            return
        key = data.draw(st.sampled_from(sorted(self.keys)))
        order_id, body, who = self.keys[key]
        r = self.call("POST", "/v1/orders", who, json=body, key=key)
        assert r.status_code in (200, 201), r.text
        assert r.json()["id"] == order_id  # invariant 5

    @rule(order=consumes(orders))
    def cancel(self, order: str) -> None:
        who = next(s for s in self.seniors if s.id == self.owner[order])
        r = self.call("POST", f"/v1/orders/{order}/cancel", who, json={"reason": "Not today"})
        assert r.status_code in (200, 409), r.text

    @rule(order=orders, score=st.integers(1, 5))
    def rate(self, order: str, score: int) -> None:
        who = next(s for s in self.seniors if s.id == self.owner[order])
        r = self.call("POST", f"/v1/orders/{order}/rating", who, json={"score": score})
        assert r.status_code in (200, 409), r.text

    @rule(seconds=st.sampled_from([5, 30, 90, 700]))
    def dispatch(self, seconds: int) -> None:
        """Time passes (offers expire, responses fall due) and the dispatcher makes a pass."""
        self.now += timedelta(seconds=seconds)
        at(self.http, self.now)
        h = self.harness
        h.run(run_once(h.sessionmaker, h.settings, self.now))

    @rule(caregiver=st.sampled_from([0, 1]), accept=st.booleans())
    def answer_an_offer(self, caregiver: int, accept: bool) -> None:
        who = self.caregivers[caregiver]
        items = self.call("GET", "/v1/offers", who).json()["items"]
        if not items:
            return
        offer = items[0]["id"]
        if accept:
            r = self.call("POST", f"/v1/offers/{offer}/accept", who)
        else:
            r = self.call("POST", f"/v1/offers/{offer}/decline", who, json={"reason": "Too far"})
        assert r.status_code in (200, 409), r.text

    @rule(order=orders, caregiver=st.sampled_from([0, 1]), override=st.booleans())
    def operator_assigns(self, order: str, caregiver: int, override: bool) -> None:
        who = self.caregivers[caregiver]
        r = self.call(
            "POST",
            f"/v1/ops/orders/{order}/assign",
            self.world.operator_a,
            json={"caregiver_id": str(who.id), "reason": "Phoned her", "override": override},
        )
        assert r.status_code in (200, 409), r.text

    @rule(caregiver=st.sampled_from([0, 1]), step=st.sampled_from(["in", "out", "withdraw"]))
    def work_a_visit(self, caregiver: int, step: str) -> None:
        who = self.caregivers[caregiver]
        visits = self.call("GET", "/v1/visits", who).json()["items"]
        mine = [v for v in visits if v["status"] in OPEN_VISIT]
        if not mine:
            return
        visit = mine[0]["id"]
        if step == "in":
            body = {"lat": HOME[0], "lon": HOME[1]}
            r = self.call("POST", f"/v1/visits/{visit}/check-in", who, json=body)
        elif step == "out":
            r = self.call("POST", f"/v1/visits/{visit}/check-out", who, json={})
        else:
            r = self.call("POST", f"/v1/visits/{visit}/withdraw", who, json={"reason": "Ill"})
        assert r.status_code in (200, 409, 422), r.text
        self.report_position(who)

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def each_senior_sees_only_her_orders(self) -> None:
        for who in self.seniors:
            items = self.call("GET", "/v1/orders?limit=100", who).json()["items"]
            assert {self.owner.get(o["id"]) for o in items} <= {who.id}

    @invariant()
    def the_database_keeps_the_invariants(self) -> None:
        self.harness.run(self._check())

    async def _check(self) -> None:
        async with self.harness.sessionmaker() as s:
            orders = (await s.execute(select(Order))).scalars().all()
            offers = (await s.execute(select(Offer))).scalars().all()
            visits = (await s.execute(select(Visit))).scalars().all()
            history = (await s.execute(select(OrderStatusHistory))).scalars().all()
            outbox = (
                await s.execute(
                    select(OutboxEvent.order_id, OutboxEvent.type, func.count())
                    .where(OutboxEvent.type.like("order.%"))
                    .group_by(OutboxEvent.order_id, OutboxEvent.type)
                )
            ).all()
        active = [v for v in visits if v.status.value in OPEN_VISIT]
        for order in orders:
            mine = [v for v in active if v.order_id == order.id]
            accepted = [
                o for o in offers if o.order_id == order.id and o.status is OfferStatus.accepted
            ]
            open_offers = [
                o for o in offers if o.order_id == order.id and o.status is OfferStatus.open
            ]
            assert len(mine) <= 1  # 1
            assert len(accepted) <= 1
            status = order.status
            if status is OrderStatus.offered:  # 3
                assert open_offers
                assert all(o.deadline is not None for o in open_offers)
            if status in (OrderStatus.assigned, OrderStatus.in_progress):
                assert len(mine) == 1
                assert mine[0].caregiver_id == order.caregiver_id
            if status in (OrderStatus.completed, OrderStatus.cancelled, OrderStatus.escalated):
                assert not open_offers
                assert not mine
            if status is OrderStatus.pending:
                assert not mine
        by_caregiver: dict[uuid.UUID, list[Visit]] = {}
        for v in active:
            by_caregiver.setdefault(v.caregiver_id, []).append(v)
        for booked in by_caregiver.values():  # 2
            booked.sort(key=lambda v: v.starts_at)
            for a, b in itertools.pairwise(booked):
                assert a.ends_at <= b.starts_at, (a.id, b.id)
        transitions = Counter((h.order_id, f"order.{h.event}") for h in history)
        events = Counter(
            {(order_id, kind): n for order_id, kind, n in outbox if kind != "order.placed"}
        )
        placed = Counter(
            {(order_id, "order.place"): n for order_id, kind, n in outbox if kind == "order.placed"}
        )
        events.update(placed)
        flagged = {k for k in events if k[1] == "order.no_show_flagged"}
        for k in flagged:
            del events[k]
        assert transitions == events  # 4


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_order_life_keeps_the_invariants(settings_: Settings) -> None:
    harness = Harness(settings_)
    OrderLife.harness = harness
    try:
        run_state_machine_as_test(
            OrderLife,
            settings=settings(
                max_examples=10,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        harness.close()


@pytest.fixture
def settings_(settings: Settings, migrated: None) -> Settings:
    return settings
