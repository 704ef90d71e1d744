"""What a senior's phone shows of her order: who is coming (name and initial), when (planned
start, ETA), and the status in plain words with a stable code, never an operator's reason."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import IdempotencyKey, Offer, Order, OutboxEvent
from app.services.dispatch import run_once
from tests.factories import FAR, NEAR_HOME, World, at, ready

SENIOR_FIELDS = {"caregiver", "planned_start", "eta", "status_code", "status_text"}


def when(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


async def place(client: AsyncClient, world: World, **body: Any) -> dict[str, Any]:
    r = await client.post(
        "/v1/orders", json={"service_code": "bathing", **body}, headers=world.senior.auth
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def mine(client: AsyncClient, world: World, order_id: object) -> dict[str, Any]:
    r = await client.get(f"/v1/orders/{order_id}", headers=world.senior.auth)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def nurse_visit(client: AsyncClient, world: World) -> dict[str, Any]:
    r = await client.get("/v1/visits", headers=world.nurse.auth)
    return r.json()["items"][0]  # type: ignore[no-any-return]


async def assign_nurse(client: AsyncClient, world: World, order_id: object) -> None:
    await ready(client, world.nurse)
    r = await client.post(
        f"/v1/ops/orders/{order_id}/assign",
        json={"caregiver_id": str(world.nurse.id)},
        headers=world.operator_a.auth,
    )
    assert r.status_code == 200, r.text


class TestWhoIsComing:
    async def test_an_assigned_order_shows_name_initial_planned_start_and_eta(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world)
        assert order["caregiver"] is None
        assert order["status_code"] == "finding_caregiver"
        assert order["status_text"] == "Finding a caregiver."
        before = datetime.now(UTC)

        await assign_nurse(client, world, order["id"])

        got = await mine(client, world, order["id"])
        visit = await nurse_visit(client, world)
        assert got["status"] == "assigned"
        assert got["caregiver"] == {
            "id": str(world.nurse.id),
            "display_name": "Nurse Zhang",
            "initial": "N",
        }
        assert got["status_code"] == "caregiver_coming"
        assert got["status_text"] == "Your caregiver is coming."
        # ASAP: the booked start is now plus her travel from 65 m away.
        assert when(got["planned_start"]) == when(visit["starts_at"])
        assert when(got["eta"]) == when(visit["starts_at"])
        assert before <= when(got["eta"]) <= before + timedelta(minutes=5)
        assert got["eta"].endswith(("Z", "+00:00"))
        # The list says the same.
        r = await client.get("/v1/orders", headers=world.senior.auth)
        [listed] = r.json()["items"]
        assert {k: listed[k] for k in SENIOR_FIELDS} == {k: got[k] for k in SENIOR_FIELDS}

    async def test_at_the_door_and_after_the_name_stays_the_eta_goes(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world)
        await assign_nurse(client, world, order["id"])
        visit = await nurse_visit(client, world)
        near = {"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]}
        r = await client.post(
            f"/v1/visits/{visit['id']}/check-in", json=near, headers=world.nurse.auth
        )
        assert r.status_code == 200, r.text

        got = await mine(client, world, order["id"])
        assert got["status_code"] == "caregiver_here"
        assert got["caregiver"]["display_name"] == "Nurse Zhang"
        assert got["eta"] is None
        assert got["planned_start"] is not None

        r = await client.post(
            f"/v1/visits/{visit['id']}/check-out", json={}, headers=world.nurse.auth
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/v1/orders/{order['id']}/rating", json={"score": 5}, headers=world.senior.auth
        )
        assert r.status_code == 200, r.text
        rated = r.json()
        assert rated["status_code"] == "visit_done"
        assert rated["status_text"] == "The visit is done."
        assert rated["caregiver"]["id"] == str(world.nurse.id)
        assert rated["eta"] is None

    async def test_an_accepted_sos_eta_is_acceptance_plus_the_engine_s_travel_time(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await ready(client, world.nurse, FAR)  # about 2.6 km away
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 201, r.text
        sos = r.json()
        now = datetime.now(UTC)
        await run_once(sessionmaker, settings, now)

        # Offered: an offer is not a promise, so nobody is named yet.
        offered = await mine(client, world, sos["id"])
        assert offered["status"] == "offered"
        assert offered["status_code"] == "asking_caregiver"
        assert offered["status_text"] == "Asking a caregiver."
        assert offered["caregiver"] is None
        assert offered["caregiver_id"] is None
        assert (offered["planned_start"], offered["eta"]) == (None, None)

        async with sessionmaker() as session:
            offer = await session.scalar(
                select(Offer).where(Offer.order_id == uuid.UUID(sos["id"]))
            )
        assert offer is not None
        assert offer.travel_s > 600  # 2.6 km at the engine's speed and detour
        accepted_at = now + timedelta(seconds=5)
        at(client, accepted_at)
        r = await client.post(f"/v1/offers/{offer.id}/accept", headers=world.nurse.auth)
        assert r.status_code == 200, r.text

        got = await mine(client, world, sos["id"])
        assert got["status_code"] == "caregiver_coming"
        assert got["caregiver"]["display_name"] == "Nurse Zhang"
        assert when(got["eta"]) == accepted_at + timedelta(seconds=offer.travel_s)
        assert got["planned_start"] == got["eta"]
        # Pressing SOS again shows the same: who is coming and when.
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 200
        assert r.json()["eta"] == got["eta"]
        assert r.json()["caregiver"] == got["caregiver"]

    async def test_a_booked_window_has_a_planned_start_and_no_eta(
        self, client: AsyncClient, world: World
    ) -> None:
        start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        order = await place(
            client,
            world,
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=2)).isoformat(),
        )
        await assign_nurse(client, world, order["id"])

        got = await mine(client, world, order["id"])
        visit = await nurse_visit(client, world)
        assert when(got["planned_start"]) == when(visit["starts_at"])
        # "Arrives in about 120 minutes" would be wrong for a visit booked for later.
        assert got["eta"] is None
        assert start <= when(got["planned_start"]) <= start + timedelta(hours=1)


class TestStatusInPlainWords:
    async def test_an_escalated_sos_says_the_duty_desk_has_it_without_the_reason(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        r = await client.post("/v1/sos", headers=world.senior.auth)
        sos = r.json()
        await run_once(sessionmaker, settings, datetime.now(UTC))  # nobody is on duty

        r = await client.get(f"/v1/orders/{sos['id']}", headers=world.senior.auth)
        got = r.json()
        assert got["status"] == "escalated"
        assert got["status_code"] == "duty_desk_on_it"
        assert got["status_text"] == "The duty desk has your call and is finding help."
        assert got["caregiver"] is None
        # The engine's reason is for operators only, on the order and in its history.
        ops = await client.get(f"/v1/ops/orders/{sos['id']}", headers=world.operator_a.auth)
        reason = ops.json()["escalation_reason"]
        assert reason
        assert reason not in r.text
        assert "escalation_reason" not in got
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 200
        assert r.json()["status_code"] == "duty_desk_on_it"

    async def test_an_escalated_routine_order_says_the_desk_is_arranging_it(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        order = await place(client, world)
        await run_once(sessionmaker, settings, datetime.now(UTC))

        got = await mine(client, world, order["id"])
        assert got["status"] == "escalated"
        assert got["status_code"] == "duty_desk_arranging"
        assert got["status_text"] == "The duty desk is arranging a caregiver for you."

    async def test_a_caregiver_flagged_late_is_said_and_a_no_show_names_nobody(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        order = await place(client, world)
        await assign_nurse(client, world, order["id"])
        visit = await nurse_visit(client, world)
        late = when(visit["starts_at"]) + timedelta(minutes=settings.no_show_grace_min, seconds=1)

        flag_only = settings.model_copy(update={"no_show_redispatch": False})
        await run_once(sessionmaker, flag_only, late)
        got = await mine(client, world, order["id"])
        assert got["status"] == "assigned"
        assert got["status_code"] == "caregiver_late"
        assert got["caregiver"]["display_name"] == "Nurse Zhang"

        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Order).where(Order.id == uuid.UUID(order["id"])).values(no_show_at=None)
            )
        await run_once(sessionmaker, settings, late)
        got = await mine(client, world, order["id"])
        assert got["status"] in ("pending", "offered", "escalated")
        assert got["caregiver"] is None
        assert (got["planned_start"], got["eta"]) == (None, None)

    async def test_an_operator_s_cancel_reason_stays_with_the_operator(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world)
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/cancel",
            json={"reason": "Daughter phoned: in hospital with pneumonia"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text

        got = await mine(client, world, order["id"])
        assert got["status_code"] == "cancelled"
        assert got["status_text"] == "This order was cancelled."
        assert got["cancel_reason"] is None
        assert "pneumonia" not in str(got)
        # Her own reason she does see.
        own = await place(client, world)
        r = await client.post(
            f"/v1/orders/{own['id']}/cancel",
            json={"reason": "my son came"},
            headers=world.senior.auth,
        )
        assert r.json()["cancel_reason"] == "my son came"
        r = await client.get("/v1/orders", headers=world.senior.auth)
        reasons = {o["id"]: o["cancel_reason"] for o in r.json()["items"]}
        assert reasons == {order["id"]: None, own["id"]: "my son came"}


class TestScope:
    async def test_another_senior_s_order_is_404_and_not_listed(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world)
        await assign_nurse(client, world, order["id"])

        r = await client.get(f"/v1/orders/{order['id']}", headers=world.neighbour.auth)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "not_found"
        assert "Nurse Zhang" not in r.text
        r = await client.get("/v1/orders", headers=world.neighbour.auth)
        assert r.json()["items"] == []

    async def test_a_caregiver_or_operator_cannot_read_the_senior_view(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world)
        for who in (world.nurse, world.operator_a):
            r = await client.get(f"/v1/orders/{order['id']}", headers=who.auth)
            assert r.status_code == 403
            assert r.json()["code"] == "wrong_role"


class TestReplayAndEvents:
    async def test_a_replay_stored_before_these_fields_still_answers(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        headers = {**world.senior.auth, "Idempotency-Key": "bath-1"}
        first = await client.post("/v1/orders", json={"service_code": "bathing"}, headers=headers)
        assert first.status_code == 201
        async with sessionmaker() as session, session.begin():
            stored = await session.scalar(select(IdempotencyKey))
            assert stored is not None
            assert stored.response_body is not None
            assert stored.response_body == first.json()
            stored.response_body = {
                k: v for k, v in stored.response_body.items() if k not in SENIOR_FIELDS
            }

        again = await client.post("/v1/orders", json={"service_code": "bathing"}, headers=headers)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()

    async def test_every_event_a_senior_receives_names_the_order_and_its_status(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """A page re-fetches the order an event names; the events carry no free text."""
        order = await place(client, world, notes="Knee is swollen again")
        await run_once(sessionmaker, settings, datetime.now(UTC))  # escalated: nobody on duty
        await assign_nurse(client, world, order["id"])
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/cancel",
            json={"reason": "Family doctor says hospital"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text

        async with sessionmaker() as session:
            events = (
                await session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.senior_id == world.senior.id)
                    .order_by(OutboxEvent.id)
                )
            ).all()
        assert [e.type for e in events] == [
            "order.placed",
            "order.escalate",
            "order.assign",
            "order.cancel",
        ]
        assert [e.payload["status"] for e in events] == [
            "pending",
            "escalated",
            "assigned",
            "cancelled",
        ]
        assert {e.payload["order_id"] for e in events} == {order["id"]}
        text = str([e.payload for e in events])
        for secret in ("Knee", "hospital", "on duty"):
            assert secret not in text
