"""The order's life as seniors and operators live it."""

import uuid
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Caregiver, OrderStatusHistory, OutboxEvent
from app.services.order_machine import TRANSITIONS, Event
from tests.factories import NEAR_HOME, World, ready


async def place(client: AsyncClient, who: dict[str, str], **body: object) -> dict[str, object]:
    r = await client.post("/v1/orders", json={"service_code": "bathing", **body}, headers=who)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def assign(
    client: AsyncClient, world: World, order_id: object, caregiver: uuid.UUID
) -> dict[str, object]:
    """The operator assigns a caregiver who is on duty near the senior (``ready``)."""
    await ready(client, world.caregiver(caregiver))
    r = await client.post(
        f"/v1/ops/orders/{order_id}/assign",
        json={"caregiver_id": str(caregiver)},
        headers=world.operator_a.auth,
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def visit_of(client: AsyncClient, world: World, who: dict[str, str]) -> dict[str, object]:
    r = await client.get("/v1/visits", headers=who)
    return r.json()["items"][0]  # type: ignore[no-any-return]


async def booked(
    client: AsyncClient, world: World, **body: object
) -> tuple[dict[str, object], dict[str, object]]:
    """The senior's order (bathing unless ``body`` says otherwise), assigned to the nurse:
    returns the order and the nurse's visit."""
    order = await place(client, world.senior.auth, **body)
    await assign(client, world, order["id"], world.nurse.id)
    return order, await visit_of(client, world, world.nurse.auth)


async def check_in(client: AsyncClient, world: World, visit: dict[str, object]) -> Response:
    """The nurse checks in at the senior's door."""
    near = {"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]}
    return await client.post(
        f"/v1/visits/{visit['id']}/check-in", json=near, headers=world.nurse.auth
    )


class TestPlace:
    async def test_asap_order_takes_the_service_defaults_and_home(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior.auth)
        assert order["status"] == "pending"
        assert order["asap"] is True
        assert order["duration_min"] == 60
        assert order["price_fen"] == 12000

    async def test_windowed_order(self, client: AsyncClient, world: World) -> None:
        start = datetime.now(UTC) + timedelta(days=1)
        order = await place(
            client,
            world.senior.auth,
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=3)).isoformat(),
            duration_min=90,
        )
        assert order["asap"] is False
        assert order["duration_min"] == 90
        assert datetime.fromisoformat(str(order["window_start"])) == start

    async def test_list_is_mine_newest_first_filterable_and_paged(
        self, client: AsyncClient, world: World
    ) -> None:
        ids = [(await place(client, world.senior.auth))["id"] for _ in range(3)]
        await place(client, world.neighbour.auth)
        await client.post(
            f"/v1/orders/{ids[0]}/cancel", json={"reason": "x"}, headers=world.senior.auth
        )

        r = await client.get("/v1/orders?limit=2", headers=world.senior.auth)
        page = r.json()
        assert [o["id"] for o in page["items"]] == [ids[2], ids[1]]
        assert page["next_cursor"]
        r = await client.get(
            "/v1/orders",
            params={"limit": 2, "cursor": page["next_cursor"]},
            headers=world.senior.auth,
        )
        assert [o["id"] for o in r.json()["items"]] == [ids[0]]
        assert r.json()["next_cursor"] is None
        r = await client.get("/v1/orders?status=cancelled", headers=world.senior.auth)
        assert [o["id"] for o in r.json()["items"]] == [ids[0]]

    async def test_get_includes_history(self, client: AsyncClient, world: World) -> None:
        order = await place(client, world.senior.auth)
        await client.post(
            f"/v1/orders/{order['id']}/cancel",
            json={"reason": "changed my mind"},
            headers=world.senior.auth,
        )
        r = await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)
        history = r.json()["history"]
        assert [(h["from_status"], h["to_status"], h["event"]) for h in history] == [
            (None, "pending", "place"),
            ("pending", "cancelled", "cancel"),
        ]
        assert history[1]["reason"] == "changed my mind"
        assert history[1]["actor_id"] == str(world.senior.id)


class TestSOS:
    async def test_sos_needs_no_body_and_is_an_emergency_at_home(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 201
        assert r.json()["priority"] == "emergency"
        assert r.json()["service_code"] == "emergency_help"
        assert r.json()["asap"] is True

    async def test_pressing_again_returns_the_open_emergency(
        self, client: AsyncClient, world: World
    ) -> None:
        first = (await client.post("/v1/sos", headers=world.senior.auth)).json()
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 200
        assert r.json()["id"] == first["id"]
        await client.post(
            f"/v1/orders/{first['id']}/cancel", json={"reason": "ok now"}, headers=world.senior.auth
        )
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 201
        assert r.json()["id"] != first["id"]


class TestCancel:
    async def test_cancel_releases_the_assigned_caregiver(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior.auth)
        await assign(client, world, order["id"], world.nurse.id)
        r = await client.post(
            f"/v1/orders/{order['id']}/cancel",
            json={"reason": "hospitalised"},
            headers=world.senior.auth,
        )
        assert r.status_code == 200
        assert r.json()["status"] == "cancelled"
        assert r.json()["cancel_reason"] == "hospitalised"
        visit = await visit_of(client, world, world.nurse.auth)
        assert visit["status"] == "cancelled"
        # The caregiver's time is free again.
        other = await place(client, world.neighbour.auth)
        await assign(client, world, other["id"], world.nurse.id)

    async def test_cannot_cancel_once_the_caregiver_is_at_the_door(
        self, client: AsyncClient, world: World
    ) -> None:
        order, visit = await booked(client, world)
        await check_in(client, world, visit)
        r = await client.post(
            f"/v1/orders/{order['id']}/cancel", json={"reason": "x"}, headers=world.senior.auth
        )
        assert r.status_code == 409
        assert r.json()["code"] == "illegal_transition"

    async def test_operator_cancels_with_reason(self, client: AsyncClient, world: World) -> None:
        order = await place(client, world.senior.auth)
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/cancel",
            json={"reason": "duplicate"},
            headers=world.operator_a.auth,
        )
        assert r.json()["status"] == "cancelled"


class TestRating:
    async def test_rating_a_completed_order_updates_the_caregiver(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        order, visit = await booked(client, world)
        await check_in(client, world, visit)
        await client.post(f"/v1/visits/{visit['id']}/check-out", json={}, headers=world.nurse.auth)

        r = await client.post(
            f"/v1/orders/{order['id']}/rating",
            json={"score": 4, "comment": "kind"},
            headers=world.senior.auth,
        )
        assert r.status_code == 200
        assert r.json()["rating"] == 4
        r = await client.post(
            f"/v1/orders/{order['id']}/rating", json={"score": 5}, headers=world.senior.auth
        )
        assert r.status_code == 409
        assert r.json()["code"] == "already_rated"
        async with sessionmaker() as session:
            nurse = await session.get(Caregiver, world.nurse.id)
            assert nurse is not None
            assert (nurse.rating_sum, nurse.rating_count) == (4, 1)
        r = await client.get("/v1/caregivers/me", headers=world.nurse.auth)
        assert r.json()["rating"] == 4.0

    async def test_cannot_rate_before_completion(self, client: AsyncClient, world: World) -> None:
        order = await place(client, world.senior.auth)
        r = await client.post(
            f"/v1/orders/{order['id']}/rating", json={"score": 5}, headers=world.senior.auth
        )
        assert r.status_code == 409
        assert r.json()["code"] == "not_completed"


class TestManualAssign:
    async def test_a_missing_skill_is_refused(self, client: AsyncClient, world: World) -> None:
        order = await place(client, world.senior.auth, service_code="nursing_visit")
        await ready(client, world.helper)  # housekeeping and (lapsed) bathing only
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.helper.id)},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 409
        assert r.json()["code"] == "missing_skill"
        assert r.json()["missing_skills"] == ["nursing"]
        assert r.json()["overridable"] is False

    async def test_an_expired_certificate_is_refused(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior.auth)  # bathing; the helper's certificate expired
        await ready(client, world.helper)
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.helper.id)},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 409
        assert r.json()["code"] == "certificate_expired"
        assert r.json()["expired_skills"] == ["bathing"]
        assert r.json()["valid_through"] == {"bathing": "2020-01-01"}
        assert "2020-01-01" in r.json()["detail"]

    async def test_strict_gender_preference_and_block_list_are_kept(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from app.models import CaregiverPreference, PreferenceKind, Senior

        async with sessionmaker() as session, session.begin():
            senior = await session.get(Senior, world.senior.id)
            assert senior is not None
            senior.preferred_gender, senior.gender_strict = "female", True  # type: ignore[assignment]
            session.add(
                CaregiverPreference(
                    senior_id=senior.id, caregiver_id=world.nurse.id, kind=PreferenceKind.blocked
                )
            )
        order = await place(client, world.senior.auth, service_code="cleaning")
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.helper.id)},
            headers=world.operator_a.auth,
        )
        assert r.json()["code"] == "gender_preference"
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.nurse.id)},
            headers=world.operator_a.auth,
        )
        assert r.json()["code"] == "blocked"

    async def test_reassign_moves_the_visit(self, client: AsyncClient, world: World) -> None:
        order = await place(client, world.senior.auth, service_code="cleaning")
        await assign(client, world, order["id"], world.nurse.id)
        await ready(client, world.helper)
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/reassign",
            json={"caregiver_id": str(world.helper.id), "reason": "nurse needed elsewhere"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text
        assert r.json()["caregiver_id"] == str(world.helper.id)
        assert (await visit_of(client, world, world.nurse.auth))["status"] == "reassigned"
        assert (await visit_of(client, world, world.helper.auth))["status"] == "assigned"

    async def test_assigning_an_assigned_order_is_a_conflict(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior.auth, service_code="cleaning")
        await assign(client, world, order["id"], world.nurse.id)
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.helper.id)},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 409
        assert r.json()["code"] == "illegal_transition"


class TestQueue:
    async def test_open_orders_by_priority_then_age_terminal_ones_hidden(
        self, client: AsyncClient, world: World
    ) -> None:
        normal = await place(client, world.senior.auth, service_code="cleaning")
        urgent = await place(client, world.senior.auth, service_code="cleaning", priority="urgent")
        done = await place(client, world.senior.auth, service_code="cleaning")
        await client.post(
            f"/v1/orders/{done['id']}/cancel", json={"reason": "x"}, headers=world.senior.auth
        )
        sos = (await client.post("/v1/sos", headers=world.neighbour.auth)).json()
        normal2 = await place(client, world.neighbour.auth, service_code="cleaning")

        r = await client.get("/v1/ops/queue", headers=world.operator_a.auth)
        items = r.json()["items"]
        assert [o["id"] for o in items] == [sos["id"], urgent["id"], normal["id"], normal2["id"]]
        assert all(o["waiting_s"] >= 0 for o in items)
        r = await client.get("/v1/ops/queue?priority=urgent", headers=world.operator_a.auth)
        assert [o["id"] for o in r.json()["items"]] == [urgent["id"]]

    async def test_detail_has_history_visits_and_contact(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior.auth)
        await assign(client, world, order["id"], world.nurse.id)
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        detail = r.json()
        assert [h["event"] for h in detail["history"]] == ["place", "assign"]
        assert detail["visits"][0]["caregiver_id"] == str(world.nurse.id)
        assert detail["senior"]["phone"] == "+8613900000001"


class TestStateMachine:
    def test_every_event_has_sources_and_a_target(self) -> None:
        assert set(TRANSITIONS) == set(Event) - {Event.place}
        for event, (sources, target) in TRANSITIONS.items():
            assert sources, event
            assert target not in {"completed", "cancelled"} or event in {
                Event.check_out,
                Event.cancel,
            }

    def test_terminal_states_have_no_way_out(self) -> None:
        for sources, _ in TRANSITIONS.values():
            assert "completed" not in sources
            assert "cancelled" not in sources

    async def test_every_transition_writes_history_and_one_event(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        order, visit = await booked(client, world)
        await check_in(client, world, visit)
        await client.post(f"/v1/visits/{visit['id']}/check-out", json={}, headers=world.nurse.auth)
        oid = uuid.UUID(str(order["id"]))
        async with sessionmaker() as session:
            history = await session.scalar(
                select(func.count()).where(OrderStatusHistory.order_id == oid)
            )
            events = (
                (
                    await session.execute(
                        select(OutboxEvent.type)
                        .where(OutboxEvent.order_id == oid)
                        .order_by(OutboxEvent.id)
                    )
                )
                .scalars()
                .all()
            )
        assert history == 4
        assert events == ["order.placed", "order.assign", "order.check_in", "order.check_out"]


class TestRegisterSenior:
    async def test_with_preferred_and_blocked_caregivers(
        self, client: AsyncClient, world: World
    ) -> None:
        """Regression: the wishes were flushed before the senior row and failed its foreign key."""
        body = {
            "name": "Zhao Lan",
            "phone": "13912345678",
            "password": "a-long-passphrase",
            "address": "7 Hongmiaopo Road",
            "neighbourhood": "Hongmiaopo",
            "lat": 34.28,
            "lon": 108.90,
            "preferred_caregivers": [str(world.nurse.id)],
            "blocked_caregivers": [str(world.helper.id)],
        }
        r = await client.post("/v1/ops/seniors", json=body, headers=world.operator_a.auth)
        assert r.status_code == 201, r.text
        assert r.json()["preferred_caregivers"] == [str(world.nurse.id)]
        assert r.json()["blocked_caregivers"] == [str(world.helper.id)]


class TestQueueEmergencies:
    async def test_a_waiting_emergency_is_above_an_escalated_routine_order(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from app.models import Order

        routine = await place(client, world.neighbour.auth, service_code="cleaning")
        async with sessionmaker() as session, session.begin():
            row = await session.get(Order, uuid.UUID(str(routine["id"])))
            assert row is not None
            row.status = "escalated"  # type: ignore[assignment]
        sos = (await client.post("/v1/sos", headers=world.senior.auth)).json()
        r = await client.get("/v1/ops/queue", headers=world.operator_a.auth)
        assert [o["id"] for o in r.json()["items"]] == [sos["id"], routine["id"]]

    async def test_placing_a_second_open_emergency_is_a_conflict_naming_the_first(
        self, client: AsyncClient, world: World
    ) -> None:
        sos = (await client.post("/v1/sos", headers=world.senior.auth)).json()
        r = await client.post(
            "/v1/orders",
            json={"service_code": "nursing_visit", "priority": "emergency"},
            headers=world.senior.auth,
        )
        assert r.status_code == 409
        assert r.json()["code"] == "emergency_open"
        assert r.json()["order_id"] == sos["id"]
