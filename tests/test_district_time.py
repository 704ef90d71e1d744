"""Right by the district's clock: every district has an IANA time zone, and a day (a
certificate's last valid date, "today", the daily visit cap) is a date in it, for the
dispatcher, the batch and an operator's manual assignment alike."""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal
from app.models import Offer, OfferStatus, Role
from app.schemas.people import ShiftIn, SkillIn
from app.security import create_access_token
from app.services import accounts
from app.services.dispatch import run_once
from tests.factories import HOME, NEAR_HOME, Person, World, at, caregiver_in

# 00:36 on 1 December in Xi'an is still 30 November in UTC.
XIAN_0036 = datetime(2026, 11, 30, 16, 36, tzinfo=UTC)
LAST_VALID = date(2026, 11, 30)


async def bather(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    world: World,
    now: datetime,
    *,
    certificate: date = LAST_VALID,
    district: str = "a",
    cap: int = 8,
) -> Person:
    """On duty next door, in shift around ``now``, bathing certificate valid through
    ``certificate`` (the district's date)."""
    a = district == "a"
    operator = Principal(
        id=(world.operator_a if a else world.operator_b).id,
        role=Role.operator,
        district_id=world.district_a if a else world.district_b,
    )
    provider_id = world.provider_a.id
    async with sessionmaker() as session, session.begin():
        if not a:
            from app.models import Provider

            provider_id = (
                await session.scalars(
                    select(Provider.id).where(Provider.district_id == world.district_b)
                )
            ).one()
        made = await accounts.create_caregiver(
            session,
            operator,
            caregiver_in(
                provider_id,
                "13700000055" if a else "13700000066",
                now,
                name="Ma Li",
                daily_visit_cap=cap,
                skills=[
                    SkillIn(skill="bathing", certificate_expires_on=certificate),
                    SkillIn(skill="housekeeping"),
                ],
                shifts=[
                    ShiftIn(starts_at=now - timedelta(hours=6), ends_at=now + timedelta(hours=12))
                ],
            ),
        )
        made.on_duty = True
        made.lat, made.lon, made.position_at = NEAR_HOME[0], NEAR_HOME[1], now
    token = create_access_token(settings, account_id=made.id, role=Role.caregiver)[0]
    return Person(made.id, token)


async def place(client: AsyncClient, who: Person, now: datetime, **body: Any) -> dict[str, Any]:
    at(client, now)
    r = await client.post("/v1/orders", json={"service_code": "bathing", **body}, headers=who.auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def offers_to(sessionmaker: async_sessionmaker[AsyncSession], who: Person) -> list[uuid.UUID]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(Offer.order_id).where(
                        Offer.caregiver_id == who.id, Offer.status == OfferStatus.open
                    )
                )
            ).all()
        )


class TestDistrictTimeZone:
    async def test_a_district_has_a_time_zone_asia_shanghai_by_default(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.post(
            "/v1/admin/districts",
            json={"code": "yanta", "name": "Yanta", "city": "Xi'an"},
            headers=world.admin.auth,
        )
        assert r.status_code == 201, r.text
        assert r.json()["time_zone"] == "Asia/Shanghai"
        r = await client.post(
            "/v1/admin/districts",
            json={
                "code": "kashgar",
                "name": "Kashgar",
                "city": "Kashgar",
                "time_zone": "Asia/Urumqi",
            },
            headers=world.admin.auth,
        )
        assert r.status_code == 201, r.text
        assert r.json()["time_zone"] == "Asia/Urumqi"
        r = await client.get("/v1/admin/districts", headers=world.admin.auth)
        assert {d["code"]: d["time_zone"] for d in r.json()}["kashgar"] == "Asia/Urumqi"

    @pytest.mark.parametrize(
        "zone", ["Mars/Olympus_Mons", "+08:00", "CST-8x", "../../etc/passwd", "asia/shanghai", ""]
    )
    async def test_an_unknown_zone_is_a_422(
        self, client: AsyncClient, world: World, zone: str
    ) -> None:
        r = await client.post(
            "/v1/admin/districts",
            json={"code": "nowhere", "name": "Nowhere", "city": "Xi'an", "time_zone": zone},
            headers=world.admin.auth,
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "validation_error"
        assert "time_zone" in r.json()["detail"]
        r = await client.patch(
            f"/v1/admin/districts/{world.district_b}",
            json={"time_zone": zone},
            headers=world.admin.auth,
        )
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"

    async def test_an_admin_changes_a_districts_zone(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.patch(
            f"/v1/admin/districts/{world.district_b}",
            json={"time_zone": "Europe/London"},
            headers=world.admin.auth,
        )
        assert r.status_code == 200, r.text
        assert (r.json()["time_zone"], r.json()["name"]) == ("Europe/London", "Beilin")
        r = await client.patch(
            f"/v1/admin/districts/{world.district_b}",
            json={"name": None},
            headers=world.admin.auth,
        )
        assert r.status_code == 422
        r = await client.patch(
            f"/v1/admin/districts/{uuid.uuid4()}", json={"name": "X"}, headers=world.admin.auth
        )
        assert r.status_code == 404
        r = await client.patch(
            f"/v1/admin/districts/{world.district_b}",
            json={"name": "X"},
            headers=world.operator_b.auth,
        )
        assert r.status_code == 403


class TestCertificateByLocalDate:
    """A certificate "valid through 2026-11-30" lapses at midnight in Xi'an, not at 08:00 the
    next morning (midnight UTC)."""

    async def test_the_dispatcher_does_not_offer_an_asap_bath_after_local_midnight(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        ma = await bather(sessionmaker, settings, world, XIAN_0036)
        await place(client, world.senior, XIAN_0036)

        tally = await run_once(sessionmaker, settings, XIAN_0036)

        assert tally.offered == 0
        assert await offers_to(sessionmaker, ma) == []
        r = await client.get("/v1/ops/queue", headers=world.operator_a.auth)
        [order] = r.json()["items"]
        assert order["status"] == "escalated"
        assert "certificate" in order["escalation_reason"]

    async def test_a_visit_ending_before_local_midnight_is_still_offered(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        evening = XIAN_0036 - timedelta(hours=3)  # 21:36 on the 30th in Xi'an
        ma = await bather(sessionmaker, settings, world, evening)
        order = await place(client, world.senior, evening)

        tally = await run_once(sessionmaker, settings, evening)

        assert tally.offered == 1
        assert await offers_to(sessionmaker, ma) == [uuid.UUID(order["id"])]

    async def test_the_batch_does_not_choose_her_for_a_visit_at_two_in_the_morning(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        ma = await bather(sessionmaker, settings, world, XIAN_0036)
        order = await place(
            client,
            world.senior,
            XIAN_0036,
            window_start="2026-12-01T02:00:00+08:00",
            window_end="2026-12-01T04:00:00+08:00",
        )

        tally = await run_once(sessionmaker, settings, XIAN_0036)

        assert (tally.offered, tally.assigned) == (0, 0)
        assert await offers_to(sessionmaker, ma) == []
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        assert r.json()["caregiver_id"] is None
        assert r.json()["offered_to"] == []

    async def test_an_operator_cannot_assign_her_a_visit_on_the_day_after(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        ma = await bather(sessionmaker, settings, world, XIAN_0036)
        order = await place(
            client,
            world.senior,
            XIAN_0036,
            window_start="2026-12-01T02:00:00+08:00",
            window_end="2026-12-01T04:00:00+08:00",
        )

        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(ma.id)},
            headers=world.operator_a.auth,
        )

        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "certificate_expired"
        assert body["valid_through"] == {"bathing": "2026-11-30"}
        assert "Asia/Shanghai" in body["detail"]
        assert "2026-12-01 03:00" in body["detail"]  # when the visit would end, local time
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={
                "caregiver_id": str(ma.id),
                "reason": "She says it was renewed",
                "override": True,
            },
            headers=world.operator_a.auth,
        )
        assert r.status_code == 409
        assert r.json()["code"] == "certificate_expired"

    async def test_an_operator_can_assign_her_a_visit_that_ends_before_midnight(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        evening = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 20:00 in Xi'an
        ma = await bather(sessionmaker, settings, world, evening)
        order = await place(
            client,
            world.senior,
            evening,
            window_start="2026-11-30T22:30:00+08:00",
            window_end="2026-11-30T23:59:00+08:00",
        )

        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(ma.id)},
            headers=world.operator_a.auth,
        )

        assert r.status_code == 200, r.text


class TestToday:
    async def test_the_daily_cap_counts_the_districts_own_day(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """In a London district a visit done at 20:00 London time was yesterday's at 01:00,
        though it was already the next day in Xi'an (the old fixed UTC+8 day)."""
        r = await client.patch(
            f"/v1/admin/districts/{world.district_b}",
            json={"time_zone": "Europe/London"},
            headers=world.admin.auth,
        )
        assert r.status_code == 200, r.text
        evening = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
        one_am = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
        wu = await bather(
            sessionmaker,
            settings,
            world,
            evening,
            certificate=date(2099, 1, 1),
            district="b",
            cap=1,
        )
        done = await place(client, world.far_senior, evening, service_code="cleaning")
        r = await client.post(
            f"/v1/ops/orders/{done['id']}/assign",
            json={"caregiver_id": str(wu.id)},
            headers=world.operator_b.auth,
        )
        assert r.status_code == 200, r.text
        visit = (await client.get("/v1/visits", headers=wu.auth)).json()["items"][0]
        near = {"lat": HOME[0], "lon": HOME[1]}
        r = await client.post(f"/v1/visits/{visit['id']}/check-in", json=near, headers=wu.auth)
        assert r.status_code == 200, r.text
        at(client, evening + timedelta(minutes=50))
        r = await client.post(f"/v1/visits/{visit['id']}/check-out", json={}, headers=wu.auth)
        assert r.status_code == 200, r.text
        async with sessionmaker() as session, session.begin():
            from app.models import Caregiver

            caregiver = await session.get(Caregiver, wu.id)
            assert caregiver is not None
            caregiver.position_at = one_am  # her phone still reports in (her shift runs on)
        order = await place(client, world.far_senior, one_am, service_code="cleaning")

        tally = await run_once(sessionmaker, settings, one_am)

        assert tally.offered == 1
        assert await offers_to(sessionmaker, wu) == [uuid.UUID(order["id"])]
