"""What the operator console reads: named queue rows with their timer, the district map, today's
KPIs in the district's time zone, and the engine's candidates for a manual assignment."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal
from app.dispatch.geo import haversine_m
from app.models import (
    AuditLog,
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    OrderStatusHistory,
    Priority,
    Role,
    Visit,
    VisitStatus,
)
from app.schemas.people import ProviderIn
from app.security import create_access_token
from app.services import accounts
from app.services.dispatch import run_once
from app.services.kpis import p95
from tests.factories import FAR, HOME, NEAR_HOME, Person, World, at, caregiver_in, ready

XIAN = ZoneInfo("Asia/Shanghai")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), XIAN).astimezone(UTC)


async def place(client: AsyncClient, who: Person, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/orders", json=body, headers=who.auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def assign(client: AsyncClient, world: World, order_id: str, caregiver: uuid.UUID) -> None:
    r = await client.post(
        f"/v1/ops/orders/{order_id}/assign",
        json={"caregiver_id": str(caregiver)},
        headers=world.operator_a.auth,
    )
    assert r.status_code == 200, r.text


async def queue(client: AsyncClient, who: Person) -> list[dict[str, Any]]:
    r = await client.get("/v1/ops/queue", headers=who.auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def _token(settings: Settings, caregiver_id: uuid.UUID) -> str:
    return create_access_token(settings, account_id=caregiver_id, role=Role.caregiver)[0]


async def audit_rows(sessionmaker: async_sessionmaker[AsyncSession], action: str) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == action)
        )
    return count or 0


class TestQueueRows:
    async def test_rows_name_the_senior_her_neighbourhood_and_the_assigned_caregiver(
        self, client: AsyncClient, world: World
    ) -> None:
        await ready(client, world.nurse)
        order = await place(client, world.senior, service_code="bathing")
        await assign(client, world, order["id"], world.nurse.id)

        [row] = await queue(client, world.operator_a)

        assert row["senior_name"] == "Senior 0001"
        assert row["senior_neighbourhood"] == "Tumen"
        assert row["caregiver_id"] == str(world.nurse.id)
        assert row["caregiver_name"] == "Nurse Zhang"
        # The timer runs on until the caregiver is at the door.
        assert row["status"] == "assigned"
        assert row["response_due_at"] is not None

    async def test_an_open_offer_is_named(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await ready(client, world.nurse)
        await place(client, world.neighbour, service_code="meal_delivery")
        assert (await run_once(sessionmaker, settings, datetime.now(UTC))).offered == 1

        [row] = await queue(client, world.operator_a)

        assert row["status"] == "offered"
        assert row["senior_name"] == "Neighbour Chen"
        assert row["offered"] == [{"id": str(world.nurse.id), "name": "Nurse Zhang"}]
        assert row["caregiver_name"] is None

    async def test_an_sos_timer_counts_down_to_the_emergency_response_target(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        at(client, now)
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code in (200, 201), r.text
        at(client, now + timedelta(minutes=4))

        [row] = await queue(client, world.operator_a)

        target = now + timedelta(minutes=settings.emergency_response_target_min)
        assert row["priority"] == "emergency"
        assert datetime.fromisoformat(row["response_due_at"]) == target
        assert row["time_left_s"] == (settings.emergency_response_target_min - 4) * 60
        assert row["senior_name"] == "Senior 0001"

    async def test_operator_b_sees_no_row_of_district_a(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior, service_code="bathing")

        assert await queue(client, world.operator_b) == []
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_b.auth)
        assert r.status_code == 404

    async def test_order_detail_carries_the_names_too(
        self, client: AsyncClient, world: World
    ) -> None:
        await ready(client, world.nurse)
        order = await place(client, world.senior, service_code="bathing")
        await assign(client, world, order["id"], world.nurse.id)

        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)

        assert r.status_code == 200, r.text
        assert r.json()["senior_name"] == "Senior 0001"
        assert r.json()["caregiver_name"] == "Nurse Zhang"


class TestMap:
    async def test_anonymous_and_wrong_role(self, client: AsyncClient, world: World) -> None:
        assert (await client.get("/v1/ops/map")).status_code == 401
        r = await client.get("/v1/ops/map", headers=world.senior.auth)
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_open_orders_caregivers_on_duty_and_the_lines_between(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await ready(client, world.nurse)
        await ready(client, world.helper)  # free now: the cleaning order's offer goes to him
        assigned = await place(client, world.senior, service_code="bathing")
        await assign(client, world, assigned["id"], world.nurse.id)
        offered = await place(client, world.neighbour, service_code="cleaning")
        await run_once(sessionmaker, settings, datetime.now(UTC))
        await place(client, world.far_senior, service_code="cleaning")  # district B

        r = await client.get("/v1/ops/map", headers=world.operator_a.auth)

        assert r.status_code == 200, r.text
        body = r.json()
        orders = {o["order_id"]: o for o in body["orders"]}
        assert set(orders) == {assigned["id"], offered["id"]}
        assert orders[assigned["id"]]["senior_name"] == "Senior 0001"
        # Near the home, never at its door (the exact address is in the audited detail).
        shown = (orders[assigned["id"]]["lat"], orders[assigned["id"]]["lon"])
        assert shown == (round(HOME[0], 3), round(HOME[1], 3))
        assert haversine_m(*shown, *HOME) < 100
        assert orders[assigned["id"]]["status"] == "assigned"
        caregivers = {c["id"]: c for c in body["caregivers"]}
        assert set(caregivers) == {str(world.nurse.id), str(world.helper.id)}
        assert caregivers[str(world.nurse.id)]["name"] == "Nurse Zhang"
        assert caregivers[str(world.nurse.id)]["state"] == "assigned"
        assert caregivers[str(world.helper.id)]["state"] == "offered"
        assert (
            caregivers[str(world.helper.id)]["lat"],
            caregivers[str(world.helper.id)]["lon"],
        ) == NEAR_HOME
        assert caregivers[str(world.helper.id)]["position_at"] is not None
        assert {(ln["order_id"], ln["caregiver_id"], ln["kind"]) for ln in body["lines"]} == {
            (assigned["id"], str(world.nurse.id), "assigned"),
            (offered["id"], str(world.helper.id), "offered"),
        }
        # Polled all day, it holds no personal data and floods no audit log.
        assert await audit_rows(sessionmaker, "ops.map") == 0

    async def test_operator_b_sees_nothing_of_district_a(
        self, client: AsyncClient, world: World
    ) -> None:
        await ready(client, world.nurse)
        await place(client, world.senior, service_code="bathing")

        r = await client.get("/v1/ops/map", headers=world.operator_b.auth)

        assert r.status_code == 200, r.text
        assert r.json()["orders"] == []
        assert r.json()["caregivers"] == []
        assert r.json()["lines"] == []
        assert r.json()["district_id"] == str(world.district_b)

    async def test_off_duty_caregivers_are_not_on_the_map(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.get("/v1/ops/map", headers=world.operator_a.auth)
        assert r.json()["caregivers"] == []


# The constructed day: 2026-03-10 in Xi'an (UTC+8). Local midnight is 16:00 UTC the day before,
# so an order at 00:10 local belongs to the 10th although its UTC date is the 9th.
DAY = date(2026, 3, 10)
NOON = local(DAY, 12)


async def _day(sessionmaker: async_sessionmaker[AsyncSession], world: World) -> None:
    async with sessionmaker() as session, session.begin():

        def order(
            senior: Person,
            created: datetime,
            status: OrderStatus,
            *,
            priority: Priority = Priority.normal,
            district: uuid.UUID = world.district_a,
            asap: bool = True,
        ) -> Order:
            o = Order(
                senior_id=senior.id,
                district_id=district,
                service_code="meal_delivery",
                priority=priority,
                status=status,
                asap=asap,
                duration_min=30,
                price_fen=0,
                lat=HOME[0],
                lon=HOME[1],
                created_by=senior.id,
                created_at=created,
                updated_at=created,
            )
            session.add(o)
            return o

        def offer(o: Order, after_s: int, caregiver: Person) -> None:
            made = o.created_at + timedelta(seconds=after_s)
            session.add(
                Offer(
                    order_id=o.id,
                    caregiver_id=caregiver.id,
                    status=OfferStatus.expired,
                    starts_at=made,
                    created_at=made,
                    deadline=made + timedelta(seconds=60),
                )
            )

        def happened(o: Order, event: str, when: datetime) -> None:
            session.add(
                OrderStatusHistory(
                    order_id=o.id, from_status=None, to_status="x", event=event, at=when
                )
            )

        S = OrderStatus
        # Placed at 00:10 local (UTC date: the 9th): counted, completed at 01:00.
        early = order(world.senior, local(DAY, 0, 10), S.completed)
        # Placed at 23:50 local the day before (same UTC date as `early`): not counted.
        eve = order(world.neighbour, local(DAY, 0) - timedelta(minutes=10), S.completed)
        sos = order(world.senior, local(DAY, 8), S.in_progress, priority=Priority.emergency)
        sos2 = order(world.neighbour, local(DAY, 9), S.escalated, priority=Priority.emergency)
        cancelled = order(world.senior, local(DAY, 10), S.cancelled)
        late = order(world.neighbour, local(DAY, 11), S.assigned)
        other = order(world.far_senior, local(DAY, 10), S.completed, district=world.district_b)
        # Booked at 07:00 for tomorrow: offered when its window nears, so neither unfilled
        # today nor a slow first offer.
        booked = order(world.neighbour, local(DAY, 7), S.offered, asap=False)
        # A caregiver flagged as not at the door today; with no_show_redispatch off only the
        # order's no_show_at says so (no history row).
        late.no_show_at = local(DAY, 11, 30)
        eve.no_show_at = local(DAY, 0) - timedelta(minutes=1)  # the day before
        await session.flush()
        offer(early, 30, world.nurse)
        offer(eve, 5, world.nurse)
        offer(sos, 10, world.nurse)
        offer(sos, 20, world.helper)
        offer(sos2, 40, world.nurse)
        offer(late, 90, world.helper)
        offer(other, 1, world.other_caregiver)
        offer(booked, 20 * 3600, world.nurse)
        session.add(
            Visit(
                order_id=sos.id,
                caregiver_id=world.nurse.id,
                status=VisitStatus.in_progress,
                starts_at=local(DAY, 8, 5),
                ends_at=local(DAY, 9, 5),
                checked_in_at=sos.created_at + timedelta(seconds=600),
            )
        )
        happened(early, "check_out", local(DAY, 1))
        happened(eve, "escalate", local(DAY, 0) - timedelta(minutes=5))  # the day before
        happened(eve, "check_out", local(DAY + timedelta(days=1), 0, 5))  # the day after
        happened(sos2, "escalate", local(DAY, 9, 5))
        happened(other, "escalate", local(DAY, 10, 5))  # district B
        happened(cancelled, "cancel", local(DAY, 10, 1))


class TestKpis:
    async def test_anonymous_and_wrong_role(self, client: AsyncClient, world: World) -> None:
        assert (await client.get("/v1/ops/kpis")).status_code == 401
        assert (await client.get("/v1/ops/kpis", headers=world.nurse.auth)).status_code == 403

    async def test_a_constructed_day_in_the_districts_time_zone(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _day(sessionmaker, world)
        at(client, NOON)

        r = await client.get("/v1/ops/kpis", headers=world.operator_a.auth)

        assert r.status_code == 200, r.text
        k = r.json()
        assert k["date"] == "2026-03-10"
        assert k["time_zone"] == "Asia/Shanghai"
        assert datetime.fromisoformat(k["day_start"]) == datetime(2026, 3, 9, 16, tzinfo=UTC)
        assert datetime.fromisoformat(k["day_end"]) == datetime(2026, 3, 10, 16, tzinfo=UTC)
        # early, sos, sos2, cancelled, late, booked; not eve (the day before) nor district B's.
        assert k["orders_placed"] == 6
        assert k["asap_placed"] == 5  # not booked
        assert k["filled"] == 3  # early (completed), sos (in progress), late (assigned)
        assert k["fill_rate"] == 0.6
        assert k["offered"] == 4
        assert k["first_offer_median_s"] == 35.0  # of 30, 10 (the first of sos's two), 40, 90
        assert k["sos_placed"] == 2
        assert k["sos_first_offer_p95_s"] == 40.0
        assert k["sos_arrival_p95_s"] == 600.0
        assert k["sos_arrived"] == 1
        assert k["escalations"] == 1
        assert k["no_shows"] == 1
        assert k["completed"] == 1

    async def test_just_before_local_midnight_it_is_still_the_same_day(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _day(sessionmaker, world)
        at(client, local(DAY, 0) - timedelta(seconds=1))

        r = await client.get("/v1/ops/kpis", headers=world.operator_a.auth)

        k = r.json()
        assert k["date"] == "2026-03-09"
        assert k["orders_placed"] == 1  # eve only
        assert k["escalations"] == 1
        assert k["completed"] == 0
        assert k["sos_first_offer_p95_s"] is None
        assert k["first_offer_median_s"] == 5.0

    async def test_operator_b_counts_only_district_b(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _day(sessionmaker, world)
        at(client, NOON)

        k = (await client.get("/v1/ops/kpis", headers=world.operator_b.auth)).json()

        assert (k["orders_placed"], k["filled"], k["escalations"]) == (1, 1, 1)
        assert k["first_offer_median_s"] == 1.0

    async def test_an_empty_day_has_no_rates(self, client: AsyncClient, world: World) -> None:
        k = (await client.get("/v1/ops/kpis", headers=world.operator_a.auth)).json()
        assert k["orders_placed"] == 0
        assert k["fill_rate"] is None
        assert k["first_offer_median_s"] is None

    def test_p95_is_the_nearest_rank(self) -> None:
        assert p95([]) is None
        assert p95([7.0]) == 7.0
        assert p95([float(i) for i in range(1, 21)]) == 19.0
        assert p95([float(i) for i in range(1, 101)]) == 95.0


class TestCandidates:
    async def test_ranked_feasible_then_soft_then_hard(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        operator = Principal(
            id=world.operator_a.id, role=Role.operator, district_id=world.district_a
        )
        async with sessionmaker() as session, session.begin():
            near = await accounts.create_caregiver(
                session,
                operator,
                caregiver_in(
                    world.provider_a.id, "13510000001", datetime.now(UTC), name="Near Wang"
                ),
            )
            further = await accounts.create_caregiver(
                session,
                operator,
                caregiver_in(world.provider_a.id, "13510000002", datetime.now(UTC), name="Far Ma"),
            )
        await ready(client, Person(near.id, _token(settings, near.id)))
        await ready(client, Person(further.id, _token(settings, further.id)), at=FAR)
        await ready(client, world.helper)  # on duty, near, but no nursing skill
        # The nurse stays off duty: every skill, but off duty is a soft rule for an ASAP visit.
        order = await place(client, world.senior, service_code="nursing_visit")

        r = await client.get(
            f"/v1/ops/orders/{order['id']}/candidates", headers=world.operator_a.auth
        )

        assert r.status_code == 200, r.text
        body = r.json()
        assert body["time_zone"] == "Asia/Shanghai"
        rows = body["candidates"]
        assert [c["name"] for c in rows] == ["Near Wang", "Far Ma", "Nurse Zhang", "Helper Liu"]
        first, second, nurse, helper = rows
        assert (first["verdict"], first["rank"], first["rules"]) == ("feasible", 1, [])
        assert (second["verdict"], second["rank"]) == ("feasible", 2)
        assert first["distance_m"] < second["distance_m"]
        assert 2000 < second["distance_m"] < 3200
        assert first["cost"] < second["cost"]
        assert first["travel_s"] < second["travel_s"]
        assert abs(sum(first["parts"].values()) - first["cost"]) < 0.5
        assert first["starts_at"] is not None
        assert nurse["verdict"] == "overridable"
        assert nurse["rank"] is None
        assert nurse["cost"] is None
        assert nurse["distance_m"] is None  # never reported a position
        assert nurse["rules"][0]["code"] == "off_duty"
        assert all(rule["overridable"] for rule in nurse["rules"])
        assert helper["verdict"] == "excluded"
        assert helper["rules"][-1]["code"] == "missing_skill"
        assert helper["rules"][-1]["overridable"] is False
        assert helper["travel_s"] is None
        # The top candidate is one the assign endpoint takes without an override.
        await assign(client, world, order["id"], uuid.UUID(first["caregiver_id"]))

    async def test_namesakes_are_told_apart_by_phone_and_provider(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        operator = Principal(
            id=world.operator_a.id, role=Role.operator, district_id=world.district_a
        )
        async with sessionmaker() as session, session.begin():
            other, _key = await accounts.create_provider(
                session, operator, ProviderIn(login="prov.kangle", name="Kangle Home Care")
            )
            for provider_id, phone in (
                (world.provider_a.id, "13510000011"),
                (other.id, "13510000012"),
            ):
                await accounts.create_caregiver(
                    session,
                    operator,
                    caregiver_in(provider_id, phone, datetime.now(UTC), name="Jia Lina"),
                )
        order = await place(client, world.senior, service_code="meal_delivery")

        rows = (
            await client.get(
                f"/v1/ops/orders/{order['id']}/candidates", headers=world.operator_a.auth
            )
        ).json()["candidates"]

        namesakes = sorted(
            (c["phone"], c["provider_name"]) for c in rows if c["name"] == "Jia Lina"
        )
        assert namesakes == [
            ("+8613510000011", "Anxin Care"),
            ("+8613510000012", "Kangle Home Care"),
        ]
        nurse = next(c for c in rows if c["caregiver_id"] == str(world.nurse.id))
        assert (nurse["phone"], nurse["provider_name"]) == ("+8613700000001", "Anxin Care")

    async def test_the_verdicts_agree_with_the_assign_endpoint(
        self, client: AsyncClient, world: World
    ) -> None:
        await ready(client, world.helper)
        order = await place(client, world.senior, service_code="nursing_visit")
        rows = (
            await client.get(
                f"/v1/ops/orders/{order['id']}/candidates", headers=world.operator_a.auth
            )
        ).json()["candidates"]
        by_id = {c["caregiver_id"]: c for c in rows}

        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.helper.id), "reason": "x", "override": True},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 409
        assert r.json()["code"] == by_id[str(world.helper.id)]["rules"][-1]["code"]
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.nurse.id), "reason": "phoned her", "override": True},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text
        assert by_id[str(world.nurse.id)]["verdict"] == "overridable"

    async def test_only_an_open_order_has_candidates(
        self, client: AsyncClient, world: World
    ) -> None:
        await ready(client, world.nurse)
        order = await place(client, world.senior, service_code="bathing")
        await assign(client, world, order["id"], world.nurse.id)

        r = await client.get(
            f"/v1/ops/orders/{order['id']}/candidates", headers=world.operator_a.auth
        )

        assert r.status_code == 409
        assert r.json()["code"] == "not_assignable"
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_operator_b_cannot_see_district_as_order(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior, service_code="bathing")

        r = await client.get(
            f"/v1/ops/orders/{order['id']}/candidates", headers=world.operator_b.auth
        )

        assert r.status_code == 404
        r = await client.get(
            f"/v1/ops/orders/{uuid.uuid4()}/candidates", headers=world.operator_a.auth
        )
        assert r.status_code == 404
        r = await client.get("/v1/ops/orders/not-a-uuid/candidates", headers=world.operator_a.auth)
        assert r.status_code == 422

    async def test_only_caregivers_of_the_district_are_judged(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world.senior, service_code="bathing")

        rows = (
            await client.get(
                f"/v1/ops/orders/{order['id']}/candidates", headers=world.operator_a.auth
            )
        ).json()["candidates"]

        assert {c["caregiver_id"] for c in rows} == {str(world.nurse.id), str(world.helper.id)}
