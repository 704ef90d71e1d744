"""Operators are told the truth: an escalation names the real cause, a caregiver holding an
offer is busy (not absent), and exclusion counts say what they count."""

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal
from app.dispatch.geo import haversine_m
from app.models import Role
from app.schemas.people import SkillIn
from app.services import accounts
from app.services.dispatch import run_once
from tests.factories import ALL_SKILLS, HOME, NEAR_HOME, World, caregiver_in
from tests.test_dispatcher import dispatch, more_caregivers, offers_of, on_duty, place

NEXT_STREET = (HOME[0] + 0.0025, HOME[1])  # 278 m north of the seniors' homes


async def caregivers(
    sessionmaker: async_sessionmaker[AsyncSession],
    world: World,
    count: int,
    *,
    first: int,
    skills: list[str],
    at: tuple[float, float] | None = NEAR_HOME,
    on_duty: bool = True,
) -> None:
    now = datetime.now(UTC)
    operator = Principal(id=world.operator_a.id, role=Role.operator, district_id=world.district_a)
    async with sessionmaker() as session, session.begin():
        for i in range(first, first + count):
            made = await accounts.create_caregiver(
                session,
                operator,
                caregiver_in(
                    world.provider_a.id,
                    f"1352000{i:04d}",
                    now,
                    skills=[SkillIn(skill=s) for s in skills],
                ),
            )
            made.on_duty = on_duty
            if at is not None:
                made.lat, made.lon, made.position_at = at[0], at[1], now


async def decisions(client: AsyncClient, world: World, order_id: str) -> list[dict[str, object]]:
    r = await client.get(f"/v1/ops/orders/{order_id}/decisions", headers=world.operator_a.auth)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


class TestBusyIsNotAbsent:
    async def test_a_scheduled_order_waits_for_the_one_caregiver_busy_with_an_offer(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        assert 270 < haversine_m(*NEXT_STREET, *HOME) < 285
        await on_duty(client, world.nurse, NEXT_STREET)
        now = datetime.now(UTC)
        first = await place(client, world)  # ASAP cleaning: offered to the nurse
        assert (await run_once(sessionmaker, settings, now)).offered == 1
        # Close to its window: the batch would escalate it if nobody could take it.
        soon = {
            "window_start": (now + timedelta(minutes=60)).isoformat(),
            "window_end": (now + timedelta(minutes=240)).isoformat(),
        }
        scheduled = await place(client, world, **soon)

        tally = await run_once(sessionmaker, settings, now + timedelta(seconds=5))

        assert tally.escalated == 0
        assert tally.waiting == 1
        r = await client.get(f"/v1/orders/{scheduled['id']}", headers=world.senior.auth)
        assert r.json()["status"] == "pending"
        [offer] = await offers_of(client, world.nurse)
        assert offer["order_id"] == first["id"]

    async def test_when_she_is_free_again_the_batch_offers_it_to_her(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse, NEXT_STREET)
        now = datetime.now(UTC)
        await place(client, world)
        await run_once(sessionmaker, settings, now)
        [offer] = await offers_of(client, world.nurse)
        soon = {
            "window_start": (now + timedelta(hours=3)).isoformat(),
            "window_end": (now + timedelta(hours=6)).isoformat(),
        }
        scheduled = await place(client, world, **soon)
        await run_once(sessionmaker, settings, now + timedelta(seconds=5))
        r = await client.post(
            f"/v1/offers/{offer['id']}/decline", json={"reason": "no"}, headers=world.nurse.auth
        )
        assert r.status_code == 200, r.text

        await run_once(sessionmaker, settings, now + timedelta(seconds=10))

        assert scheduled["id"] in {o["order_id"] for o in await offers_of(client, world.nurse)}


class TestTheRealCause:
    async def test_nobody_with_the_skill_says_so(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        others = [s for s in ALL_SKILLS if s != "rehabilitation"]
        await caregivers(sessionmaker, world, 53, first=0, skills=others)
        order = await place(client, world, service_code="rehabilitation")

        tally = await dispatch(sessionmaker, settings)

        assert tally.escalated == 1
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        assert r.json()["escalation_reason"] == (
            "None of the 53 caregivers on duty has the skill rehabilitation."
        )

    async def test_nobody_on_duty_is_said_only_when_true(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        order = await place(client, world)
        await dispatch(sessionmaker, settings)
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        # The nurse and the helper: both off duty.
        assert r.json()["escalation_reason"] == "None of the district's 2 caregivers is on duty."

    async def test_the_exclusion_counts_of_an_escalation_cover_the_whole_district(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        far = (HOME[0] + 0.3, HOME[1])  # 33 km north: beyond everyone's radius
        await caregivers(sessionmaker, world, 4, first=0, skills=["housekeeping"])
        await caregivers(sessionmaker, world, 3, first=10, skills=["bathing"], at=far)
        await caregivers(sessionmaker, world, 2, first=20, skills=["bathing"], at=None)
        await caregivers(sessionmaker, world, 5, first=30, skills=["bathing"], on_duty=False)
        order = await place(client, world, service_code="bathing")

        tally = await dispatch(sessionmaker, settings)

        assert tally.escalated == 1
        [escalation] = await decisions(client, world, order["id"])
        explanation = escalation["explanation"]
        assert isinstance(explanation, dict)
        assert explanation["excluded_scope"] == "district"
        # Every caregiver of the district, counted once by the first rule that excludes them:
        # the world's nurse and helper (off duty) and the 14 above.
        assert explanation["caregivers"] == 16
        assert explanation["excluded"] == {
            "off_duty": 7,
            "no_position": 2,
            "radius": 3,
            "skill": 4,
        }
        assert escalation["reason"] == (
            "None of the 9 caregivers on duty can take it: 4 without the skill bathing, "
            "3 outside their service radius, 2 without a known position; 7 more off duty."
        )

    async def test_an_offer_says_its_counts_are_of_the_caregivers_examined(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await more_caregivers(client, sessionmaker, world, 3)
        order = await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await decisions(client, world, order["id"])
        assert offer["kind"] == "offer"
        explanation = offer["explanation"]
        assert isinstance(explanation, dict)
        assert explanation["excluded_scope"] == "examined"
        assert explanation["examined"] >= 1
