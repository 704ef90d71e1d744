"""One set of rules for every assignment: an operator's choice is judged by the engine's own
rules (travel between visits included), soft ones can be overridden with a reason that is
recorded, hard ones never."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal
from app.dispatch.geo import haversine_m
from app.errors import Conflict
from app.models import Role
from app.security import create_access_token
from app.services import accounts
from app.services.fleet import OVERRUN_HOLD
from app.services.visits import _refuse_clash
from tests.factories import HOME, NEAR_HOME, Person, World, at, caregiver_in, ready, senior_in

XIAN = ZoneInfo("Asia/Shanghai")
# 10.1 km east of HOME: about 54 minutes by the engine's travel model (x1.35 at 4.2 m/s).
AWAY = (HOME[0], HOME[1] + 0.1098)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), XIAN).astimezone(UTC)


async def assign(
    client: AsyncClient, world: World, order_id: str, caregiver: uuid.UUID, **body: Any
) -> Response:
    return await client.post(
        f"/v1/ops/orders/{order_id}/assign",
        json={"caregiver_id": str(caregiver), **body},
        headers=world.operator_a.auth,
    )


async def order_of(client: AsyncClient, who: Person, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/orders", json=body, headers=who.auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def senior_away(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, world: World
) -> Person:
    """A senior of district A who lives 10.1 km from the others."""
    operator = Principal(id=world.operator_a.id, role=Role.operator, district_id=world.district_a)
    async with sessionmaker() as session, session.begin():
        senior = await accounts.create_senior(
            session,
            operator,
            senior_in("13900000077", lat=AWAY[0], lon=AWAY[1]),
            now=datetime.now(UTC),
        )
    token = create_access_token(settings, account_id=senior.id, role=Role.senior)[0]
    return Person(senior.id, token)


async def shift(client: AsyncClient, world: World, who: uuid.UUID, start: datetime) -> None:
    r = await client.post(
        f"/v1/ops/caregivers/{who}/shifts",
        json={
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=10)).isoformat(),
        },
        headers=world.operator_a.auth,
    )
    assert r.status_code == 201, r.text


class TestTravel:
    async def test_two_homes_10_km_apart_back_to_back_cannot_both_be_hers(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        assert 10_000 < haversine_m(*HOME, *AWAY) < 10_200
        away = await senior_away(sessionmaker, settings, world)
        day = (datetime.now(XIAN) + timedelta(days=2)).date()
        await shift(client, world, world.nurse.id, local(day, 8))
        first = await order_of(
            client,
            world.senior,
            service_code="bathing",  # 60 minutes
            window_start=local(day, 9).isoformat(),
            window_end=local(day, 10).isoformat(),
        )
        second = await order_of(
            client,
            away,
            service_code="bathing",
            window_start=local(day, 10).isoformat(),
            window_end=local(day, 11).isoformat(),
        )
        r = await assign(client, world, first["id"], world.nurse.id)
        assert r.status_code == 200, r.text

        r = await assign(client, world, second["id"], world.nurse.id)

        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "no_time_to_travel"
        assert "travel" in body["detail"]
        assert "54 min" in body["detail"]
        assert body["overridable"] is False
        # Hard: no override sets it aside.
        r = await assign(
            client, world, second["id"], world.nurse.id, override=True, reason="She'll hurry"
        )
        assert r.status_code == 409
        assert r.json()["code"] == "no_time_to_travel"
        r = await client.get(f"/v1/orders/{second['id']}", headers=away.auth)
        assert (r.json()["status"], r.json()["caregiver_id"]) == ("pending", None)

    async def test_the_visit_starts_when_the_engine_says_she_can_be_there(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Not blindly at the window's start: after her earlier visit and the travel."""
        away = await senior_away(sessionmaker, settings, world)
        day = (datetime.now(XIAN) + timedelta(days=2)).date()
        await shift(client, world, world.nurse.id, local(day, 8))
        first = await order_of(
            client,
            away,
            service_code="bathing",
            window_start=local(day, 8, 30).isoformat(),
            window_end=local(day, 9, 30).isoformat(),
        )
        later = await order_of(
            client,
            world.senior,
            service_code="bathing",
            window_start=local(day, 9).isoformat(),
            window_end=local(day, 12).isoformat(),
        )
        assert (await assign(client, world, first["id"], world.nurse.id)).status_code == 200

        r = await assign(client, world, later["id"], world.nurse.id)

        assert r.status_code == 200, r.text
        visits = (await client.get("/v1/visits", headers=world.nurse.auth)).json()["items"]
        starts = {v["order_id"]: datetime.fromisoformat(v["starts_at"]) for v in visits}
        assert starts[first["id"]] == local(day, 8, 30)
        travel = starts[later["id"]] - local(day, 9, 30)
        assert timedelta(minutes=53) < travel < timedelta(minutes=56)


class TestSoftRules:
    async def off_duty_caregiver(
        self, sessionmaker: async_sessionmaker[AsyncSession], world: World
    ) -> uuid.UUID:
        """Off duty, no shift today or tomorrow, no position: can clean, is just not working."""
        now = datetime.now(UTC)
        operator = Principal(
            id=world.operator_a.id, role=Role.operator, district_id=world.district_a
        )
        async with sessionmaker() as session, session.begin():
            made = await accounts.create_caregiver(
                session,
                operator,
                caregiver_in(
                    world.provider_a.id,
                    "13700000044",
                    now,
                    shifts=[
                        {
                            "starts_at": now + timedelta(days=5),
                            "ends_at": now + timedelta(days=5, hours=8),
                        }
                    ],
                ),
            )
            return made.id

    async def test_off_duty_off_shift_and_nowhere_is_refused_then_overridden_and_recorded(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        caregiver = await self.off_duty_caregiver(sessionmaker, world)
        order = await order_of(client, world.senior, service_code="cleaning")

        r = await assign(client, world, order["id"], caregiver, reason="Phoned her")

        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "off_duty"
        assert body["overridable"] is True
        assert [rule["code"] for rule in body["rules"]] == [
            "off_duty",
            "no_position",
            "outside_shift",
        ]
        assert all(rule["overridable"] for rule in body["rules"])
        assert "override" in body["detail"]
        # An override without a reason is not an override.
        r = await assign(client, world, order["id"], caregiver, override=True)
        assert r.status_code == 422
        assert r.json()["code"] == "validation_error"

        started = datetime.now(UTC)
        r = await assign(
            client,
            world,
            order["id"],
            caregiver,
            override=True,
            reason="Lives next door; agreed on the phone to go now",
        )

        assert r.status_code == 200, r.text
        assert r.json()["caregiver_id"] == str(caregiver)
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        detail = r.json()
        [manual] = [d for d in detail["decisions"] if d["kind"] == "manual"]
        assert manual["caregiver_ids"] == [str(caregiver)]
        assert manual["reason"] == "Lives next door; agreed on the phone to go now"
        assert manual["explanation"]["by"] == str(world.operator_a.id)
        assert [o["code"] for o in manual["explanation"]["overridden"]] == [
            "off_duty",
            "no_position",
            "outside_shift",
        ]
        last = detail["history"][-1]
        assert last["event"] == "assign"
        assert last["actor_id"] == str(world.operator_a.id)
        assert last["reason"].startswith("Overrode off_duty, no_position, outside_shift:")
        # Where she is is unknown: the visit is placed as if she were at the door, now.
        [visit] = detail["visits"]
        assert started <= datetime.fromisoformat(visit["starts_at"]) <= datetime.now(UTC)

    async def test_reassignment_keeps_the_same_rules(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        caregiver = await self.off_duty_caregiver(sessionmaker, world)
        order = await order_of(client, world.senior, service_code="cleaning")
        await ready(client, world.nurse)
        assert (await assign(client, world, order["id"], world.nurse.id)).status_code == 200

        r = await client.post(
            f"/v1/ops/orders/{order['id']}/reassign",
            json={"caregiver_id": str(caregiver), "reason": "The nurse is needed elsewhere"},
            headers=world.operator_a.auth,
        )

        assert r.status_code == 409
        assert r.json()["code"] == "off_duty"
        r = await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)
        assert r.json()["caregiver_id"] == str(world.nurse.id)

    async def test_a_plain_assignment_is_recorded_with_nothing_overridden(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await order_of(client, world.senior, service_code="cleaning")
        await ready(client, world.nurse)
        r = await assign(client, world, order["id"], world.nurse.id, override=True, reason="x")
        assert r.status_code == 200, r.text
        r = await client.get(
            f"/v1/ops/orders/{order['id']}/decisions", headers=world.operator_a.auth
        )
        [manual] = r.json()
        assert manual["kind"] == "manual"
        assert manual["explanation"]["overridden"] == []
        assert manual["explanation"]["time_zone"] == "Asia/Shanghai"


class TestWindow:
    async def test_a_window_with_no_room_left_needs_an_override(
        self, client: AsyncClient, world: World
    ) -> None:
        now = datetime.now(UTC)
        order = await order_of(
            client,
            world.senior,
            service_code="bathing",
            window_start=(now + timedelta(hours=1)).isoformat(),
            window_end=(now + timedelta(hours=2)).isoformat(),
        )
        later = now + timedelta(hours=1, minutes=30)  # the last start that fit was 30 min ago
        at(client, later)
        await ready(client, world.nurse)

        r = await assign(client, world, order["id"], world.nurse.id)

        assert r.status_code == 409
        assert r.json()["code"] == "outside_window"
        assert r.json()["overridable"] is True
        r = await assign(
            client, world, order["id"], world.nurse.id, override=True, reason="She can wait"
        )
        assert r.status_code == 200, r.text
        [visit] = (await client.get("/v1/visits", headers=world.nurse.auth)).json()["items"]
        assert later <= datetime.fromisoformat(visit["starts_at"]) < later + timedelta(minutes=1)

    async def test_too_far_for_an_emergency_is_said_and_can_be_overridden(
        self, client: AsyncClient, world: World
    ) -> None:
        sos = await client.post("/v1/sos", headers=world.senior.auth)
        assert sos.status_code in (200, 201), sos.text
        far = (HOME[0] + 0.36, HOME[1])  # 40 km north: hours away by e-bike
        await ready(client, world.nurse, at=far)

        r = await assign(client, world, sos.json()["id"], world.nurse.id)

        assert r.status_code == 409
        assert [rule["code"] for rule in r.json()["rules"]] == ["outside_radius", "outside_window"]
        assert "45 min" in r.json()["rules"][1]["detail"]
        r = await assign(
            client, world, sos.json()["id"], world.nurse.id, override=True, reason="Nobody else"
        )
        assert r.status_code == 200, r.text


class TestHardRules:
    async def test_a_block_is_never_overridden(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from app.models import CaregiverPreference, PreferenceKind

        async with sessionmaker() as session, session.begin():
            session.add(
                CaregiverPreference(
                    senior_id=world.senior.id,
                    caregiver_id=world.nurse.id,
                    kind=PreferenceKind.blocked,
                )
            )
        order = await order_of(client, world.senior, service_code="cleaning")

        r = await assign(
            client, world, order["id"], world.nurse.id, override=True, reason="She asked for her"
        )

        assert r.status_code == 409
        assert r.json()["code"] == "blocked"
        assert r.json()["overridable"] is False

    async def test_a_missing_skill_is_never_overridden(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await order_of(client, world.senior, service_code="nursing_visit")
        await ready(client, world.helper)
        r = await assign(client, world, order["id"], world.helper.id, override=True, reason="x")
        assert r.status_code == 409
        assert r.json()["code"] == "missing_skill"


class TestAccept:
    async def test_an_accept_is_judged_by_the_hard_rules_on_the_caregivers_day_as_it_is_now(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Offered a visit, then booked by an operator 10 km away just before it: accepting
        the offer now would leave no time to travel, so it is refused like a manual
        assignment would be (it was only checked for overlap)."""
        from app.services.dispatch import run_once

        away = await senior_away(sessionmaker, settings, world)
        day = (datetime.now(XIAN) + timedelta(days=1)).date()
        t = local(day, 6)
        at(client, t)
        await shift(client, world, world.nurse.id, local(day, 8))
        await ready(client, world.nurse, at=AWAY)
        later = await order_of(
            client,
            away,
            service_code="bathing",
            window_start=local(day, 10).isoformat(),
            window_end=local(day, 11).isoformat(),
        )
        await run_once(sessionmaker, settings, t)
        r = await client.get("/v1/offers", headers=world.nurse.auth)
        [offer] = [o for o in r.json()["items"] if o["order_id"] == later["id"]]

        earlier = await order_of(
            client,
            world.senior,
            service_code="bathing",
            window_start=local(day, 9).isoformat(),
            window_end=local(day, 10).isoformat(),
        )
        r = await assign(
            client, world, earlier["id"], world.nurse.id, override=True, reason="Only nurse"
        )
        assert r.status_code == 200, r.text

        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)

        assert r.status_code == 409, r.text
        assert r.json()["code"] == "no_time_to_travel"
        r = await client.get(f"/v1/orders/{later['id']}", headers=away.auth)
        assert r.json()["caregiver_id"] is None

    async def test_two_operators_at_once_cannot_book_her_into_two_homes_10_km_apart(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Both assignments judged at the same moment would each see her day empty (the
        EXCLUDE constraint stops overlaps, not travel): her row is locked while one is
        judged and booked, so the other sees that booking."""
        import asyncio

        away = await senior_away(sessionmaker, settings, world)
        day = (datetime.now(XIAN) + timedelta(days=2)).date()
        await shift(client, world, world.nurse.id, local(day, 8))
        orders = [
            await order_of(
                client,
                who,
                service_code="bathing",
                window_start=local(day, hour).isoformat(),
                window_end=local(day, hour + 1).isoformat(),
            )
            for who, hour in ((world.senior, 9), (away, 10))
        ]
        answers = await asyncio.gather(
            *(assign(client, world, o["id"], world.nurse.id) for o in orders)
        )

        assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
        refused = next(r for r in answers if r.status_code == 409)
        assert refused.json()["code"] == "no_time_to_travel"


async def overrunning(client: AsyncClient, world: World) -> datetime:
    """The nurse checked in at the senior's door for an ASAP visit: 5 minutes past its booked
    end (the moment returned, UTC) she has not checked out."""
    await ready(client, world.nurse)
    first = await order_of(client, world.senior, service_code="companionship")
    assert (await assign(client, world, first["id"], world.nurse.id)).status_code == 200
    [visit] = (await client.get("/v1/visits", headers=world.nurse.auth)).json()["items"]
    r = await client.post(
        f"/v1/visits/{visit['id']}/check-in",
        json={"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]},
        headers=world.nurse.auth,
    )
    assert r.status_code == 200, r.text
    return datetime.fromisoformat(r.json()["ends_at"]) + timedelta(minutes=5)


class TestOverrun:
    async def test_a_caregiver_still_in_a_visit_past_its_end_is_not_planned_to_leave_now(
        self, client: AsyncClient, world: World
    ) -> None:
        """Her bath ran over: nobody knows when she will leave, so she is held for
        ``OVERRUN_HOLD`` more; an ASAP order booked on her starts after that, not in a minute
        (the senior would be told a caregiver is 'about 1 minute' away while she is still busy)."""
        late = await overrunning(client, world)
        at(client, late)
        await ready(client, world.nurse)  # her phone still reports, from the senior's home

        second = await order_of(client, world.neighbour, service_code="companionship")
        r = await assign(client, world, second["id"], world.nurse.id)

        assert r.status_code == 200, r.text
        visits = (await client.get("/v1/visits", headers=world.nurse.auth)).json()["items"]
        start = next(
            datetime.fromisoformat(v["starts_at"]) for v in visits if v["order_id"] == second["id"]
        )
        assert start >= late + OVERRUN_HOLD

    async def test_no_booking_may_start_within_the_hold_of_an_overrunning_visit(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """The database-side guard (the last word on SQLite) agrees with the engine."""
        now = await overrunning(client, world)
        async with sessionmaker() as session:
            with pytest.raises(Conflict):
                await _refuse_clash(
                    session, world.nurse.id, now + timedelta(minutes=3), now + OVERRUN_HOLD, now=now
                )
            await _refuse_clash(
                session,
                world.nurse.id,
                now + OVERRUN_HOLD,
                now + OVERRUN_HOLD + timedelta(hours=1),
                now=now,
            )
