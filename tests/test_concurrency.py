"""Invariants 1, 2 and 5 under real concurrency: many requests at once, each with its own
transaction and connection. Run on both databases; on PostgreSQL the constraints decide,
on SQLite the serialized write transaction does."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal
from app.models import Order, OutboxEvent, Role, Visit
from app.services import accounts
from tests.conftest import IS_POSTGRES
from tests.factories import NEAR_HOME, World, caregiver_in, ready, resend_shed, senior_in

N = 50


async def _caregivers(
    sessionmaker: async_sessionmaker[AsyncSession], world: World, count: int
) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    operator = Principal(id=world.operator_a.id, role=Role.operator, district_id=world.district_a)
    async with sessionmaker() as session, session.begin():
        provider_id = world.provider_a.id
        made = [
            await accounts.create_caregiver(
                session, operator, caregiver_in(provider_id, f"1360000{i:04d}", now)
            )
            for i in range(count)
        ]
        for c in made:  # on duty near the seniors: the engine's rules let them take an ASAP visit
            c.on_duty = True
            c.lat, c.lon, c.position_at = NEAR_HOME[0], NEAR_HOME[1], now
        return [c.id for c in made]


def _codes(responses: list[Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in responses:
        counts[r.status_code] = counts.get(r.status_code, 0) + 1
    return counts


async def test_concurrent_assigns_of_one_order_have_one_winner(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    caregivers = await _caregivers(sessionmaker, world, N)
    r = await client.post("/v1/orders", json={"service_code": "bathing"}, headers=world.senior.auth)
    order_id = r.json()["id"]

    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/ops/orders/{order_id}/assign",
                json={"caregiver_id": str(c)},
                headers=world.operator_a.auth,
            )
            for c in caregivers
        )
    )
    responses = await resend_shed(client, responses)

    assert _codes(responses) == {200: 1, 409: N - 1}, [r.text for r in responses[:3]]
    assert all(
        r.headers["content-type"] == "application/problem+json"
        for r in responses
        if r.status_code == 409
    )
    winner = next(r.json()["caregiver_id"] for r in responses if r.status_code == 200)
    async with sessionmaker() as session:
        visits = (
            (await session.execute(select(Visit).where(Visit.order_id == uuid.UUID(order_id))))
            .scalars()
            .all()
        )
        assert [str(v.caregiver_id) for v in visits] == [winner]
        order = await session.get(Order, uuid.UUID(order_id))
        assert order is not None
        assert str(order.caregiver_id) == winner
        # One transition, one event: the losers left nothing behind.
        assigned_events = await session.scalar(
            select(func.count()).where(
                OutboxEvent.order_id == order.id, OutboxEvent.type == "order.assign"
            )
        )
        assert assigned_events == 1


async def test_concurrent_overlapping_visits_for_one_caregiver_have_one_winner(
    client: AsyncClient,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    now = datetime.now(UTC)
    operator = Principal(id=world.operator_a.id, role=Role.operator, district_id=world.district_a)
    async with sessionmaker() as session, session.begin():
        seniors = [
            await accounts.create_senior(session, operator, senior_in(f"1590000{i:04d}"), now=now)
            for i in range(N)
        ]
    from app.security import create_access_token

    start = now + timedelta(hours=1)
    order_ids = []
    for i, senior in enumerate(seniors):
        token = create_access_token(settings, account_id=senior.id, role=Role.senior)[0]
        window = {
            "window_start": (start + timedelta(minutes=i)).isoformat(),
            "window_end": (start + timedelta(minutes=i + 120)).isoformat(),
        }
        r = await client.post(
            "/v1/orders",
            json={"service_code": "companionship", **window},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        order_ids.append(r.json()["id"])

    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/ops/orders/{oid}/assign",
                json={"caregiver_id": str(world.nurse.id)},
                headers=world.operator_a.auth,
            )
            for oid in order_ids
        )
    )
    responses = await resend_shed(client, responses)

    assert _codes(responses) == {200: 1, 409: N - 1}, [r.text for r in responses[:3]]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"caregiver_busy"}
    async with sessionmaker() as session:
        active = await session.scalar(
            select(func.count()).where(
                Visit.caregiver_id == world.nurse.id, Visit.status == "assigned"
            )
        )
        assert active == 1
        # The losing orders are untouched and still waiting for someone.
        pending = await session.scalar(
            select(func.count()).where(
                Order.id.in_([uuid.UUID(o) for o in order_ids]), Order.status == "pending"
            )
        )
        assert pending == N - 1


async def test_concurrent_posts_with_one_idempotency_key_make_one_order(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    body = {"service_code": "meal_delivery", "notes": "no salt"}
    headers = {**world.senior.auth, "Idempotency-Key": "tap-42"}

    responses = await asyncio.gather(
        *(client.post("/v1/orders", json=body, headers=headers) for _ in range(N))
    )
    responses = await resend_shed(client, responses)

    assert _codes(responses) == {201: N}, [r.text for r in responses[:3]]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == N - 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        assert (
            await session.scalar(select(func.count()).where(OutboxEvent.type == "order.placed"))
            == 1
        )


async def test_concurrent_accept_of_sos_and_cancel_leave_one_outcome(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A senior cancels while an operator assigns: the order ends in exactly one state."""
    r = await client.post("/v1/sos", headers=world.senior.auth)
    order_id = r.json()["id"]
    assign, cancel = await asyncio.gather(
        client.post(
            f"/v1/ops/orders/{order_id}/assign",
            json={"caregiver_id": str(world.nurse.id)},
            headers=world.operator_a.auth,
        ),
        client.post(
            f"/v1/orders/{order_id}/cancel",
            json={"reason": "false alarm"},
            headers=world.senior.auth,
        ),
    )
    assert {assign.status_code, cancel.status_code} <= {200, 409}
    assert 200 in {assign.status_code, cancel.status_code}
    async with sessionmaker() as session:
        order = await session.get(Order, uuid.UUID(order_id))
        assert order is not None
        active = await session.scalar(
            select(func.count()).where(Visit.order_id == order.id, Visit.status == "assigned")
        )
        if order.status == "cancelled":
            assert active == 0
        else:
            assert order.status == "assigned"
            assert active == 1


@pytest.mark.postgres_only
async def test_database_itself_refuses_two_active_visits_and_overlaps(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The constraints hold even for code that bypasses the services."""
    assert IS_POSTGRES
    r = await client.post(
        "/v1/orders", json={"service_code": "companionship"}, headers=world.senior.auth
    )
    first = r.json()["id"]
    r = await client.post(
        "/v1/orders", json={"service_code": "companionship"}, headers=world.neighbour.auth
    )
    second = r.json()["id"]
    now = datetime.now(UTC)
    insert = text(
        "INSERT INTO visit (id, order_id, caregiver_id, status, starts_at, ends_at, assigned_at) "
        "VALUES (:id, :order, :caregiver, 'assigned', :s, :e, :s)"
    )
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert,
            {
                "id": uuid.uuid4(),
                "order": uuid.UUID(first),
                "caregiver": world.nurse.id,
                "s": now,
                "e": now + timedelta(hours=1),
            },
        )
    with pytest.raises(IntegrityError, match="uq_visit_active_order"):
        async with sessionmaker() as session, session.begin():
            await session.execute(
                insert,
                {
                    "id": uuid.uuid4(),
                    "order": uuid.UUID(first),
                    "caregiver": world.helper.id,
                    "s": now,
                    "e": now + timedelta(hours=1),
                },
            )
    with pytest.raises(IntegrityError, match="ex_visit_caregiver_overlap"):
        async with sessionmaker() as session, session.begin():
            await session.execute(
                insert,
                {
                    "id": uuid.uuid4(),
                    "order": uuid.UUID(second),
                    "caregiver": world.nurse.id,
                    "s": now + timedelta(minutes=30),
                    "e": now + timedelta(hours=2),
                },
            )
    # Back to back is not an overlap: [start, end) ranges.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert,
            {
                "id": uuid.uuid4(),
                "order": uuid.UUID(second),
                "caregiver": world.nurse.id,
                "s": now + timedelta(hours=1),
                "e": now + timedelta(hours=2),
            },
        )


async def test_double_tapped_sos_opens_one_emergency(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/sos", headers=world.senior.auth) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1


async def test_racing_ratings_count_once(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from app.models import Caregiver

    r = await client.post(
        "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
    )
    order_id = r.json()["id"]
    await ready(client, world.nurse)
    await client.post(
        f"/v1/ops/orders/{order_id}/assign",
        json={"caregiver_id": str(world.nurse.id)},
        headers=world.operator_a.auth,
    )
    visit_id = (await client.get("/v1/visits", headers=world.nurse.auth)).json()["items"][0]["id"]
    near = {"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]}
    await client.post(f"/v1/visits/{visit_id}/check-in", json=near, headers=world.nurse.auth)
    await client.post(f"/v1/visits/{visit_id}/check-out", json={}, headers=world.nurse.auth)

    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/orders/{order_id}/rating", json={"score": 5}, headers=world.senior.auth
            )
            for _ in range(10)
        )
    )
    assert _codes(responses) == {200: 1, 409: 9}
    async with sessionmaker() as session:
        nurse = await session.get(Caregiver, world.nurse.id)
        assert nurse is not None
        assert (nurse.rating_sum, nurse.rating_count) == (5, 1)


async def test_a_transition_based_on_a_stale_read_loses_even_if_the_status_matches(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Reassignment keeps the status 'assigned'; a withdrawal decided on the old row must not
    then succeed and strand the new caregiver's visit (it did before orders had a version)."""
    from app.errors import Conflict
    from app.services.order_machine import Event, transition

    r = await client.post(
        "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
    )
    order_id = uuid.UUID(r.json()["id"])
    await ready(client, world.nurse)
    await ready(client, world.helper)
    await client.post(
        f"/v1/ops/orders/{order_id}/assign",
        json={"caregiver_id": str(world.nurse.id)},
        headers=world.operator_a.auth,
    )
    async with sessionmaker() as session:
        stale = await session.get(Order, order_id)  # what the nurse's withdraw request read
    assert stale is not None
    r = await client.post(
        f"/v1/ops/orders/{order_id}/reassign",
        json={"caregiver_id": str(world.helper.id), "reason": "nearer"},
        headers=world.operator_a.auth,
    )
    assert r.status_code == 200

    async with sessionmaker() as session, session.begin():
        with pytest.raises(Conflict) as caught:
            await transition(
                session, stale, Event.withdraw, actor_id=world.nurse.id, at=datetime.now(UTC)
            )
    assert caught.value.code == "concurrent_change"
    async with sessionmaker() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        assert (order.status, order.caregiver_id) == ("assigned", world.helper.id)
