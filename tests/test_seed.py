"""The demo district that `doorstep seed-demo` loads, the log-ins it prints, and its refresh:
the README's walk-through works at any hour, and days later."""

import re
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from app.config import Settings
from app.deps import Principal, get_now
from app.models import (
    Account,
    Caregiver,
    CaregiverPreference,
    CaregiverSkill,
    District,
    Offer,
    Order,
    OrderStatus,
    OrderStatusHistory,
    OutboxEvent,
    Provider,
    Role,
    Senior,
    Shift,
    Visit,
    VisitStatus,
)
from app.schemas.orders import OrderIn
from app.schemas.people import DistrictIn, OperatorIn, ProviderIn, ShiftIn
from app.seed import seed_demo
from app.services import accounts, orders
from app.services.dispatch import run_once
from tests.factories import ALL_SKILLS, caregiver_in, senior_in

# Lianhu District, Xi'an.
LAT = (34.255, 34.285)
LON = (108.88, 108.95)
PASSWORD = re.compile(r"password for all: (\S+?)\)")
LOGIN = re.compile(r"^ {2}(admin|operator|caregiver|senior) +(\S+)", re.MULTILINE)
API_KEY = re.compile(r"^ {2}provider\.\w+ +(dsk_\S+)$", re.MULTILINE)
PHONE = re.compile(r"^\+861[358][0-9]{9}$")  # stored in E.164
# The demo district's clock, and a day to seed on (any would do).
XIAN = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)
ZHANG_MIN, LIU_JIANJUN = "13700000001", "13700000002"
LI_GUILAN = "13900000001"
# The longest service in the catalogue (a 3 h hospital escort) and the travel across Lianhu.
LONGEST_VISIT = timedelta(hours=3, minutes=30)


def _clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def xian(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """An instant given in district time, in UTC."""
    return datetime.combine(day, time(hour, minute), XIAN).astimezone(UTC)


async def _counts(session: AsyncSession) -> tuple[Counter[Role], Counter[OrderStatus]]:
    roles = Counter(
        dict(
            (await session.execute(select(Account.role, func.count()).group_by(Account.role))).all()
        )
    )
    statuses = Counter(
        dict(
            (await session.execute(select(Order.status, func.count()).group_by(Order.status))).all()
        )
    )
    return roles, statuses


async def _token(client: AsyncClient, login: str, password: str) -> dict[str, str]:
    r = await client.post("/v1/auth/token", data={"username": login, "password": password})
    assert r.status_code == 200, (login, r.text)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _logins(printed: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    password = PASSWORD.search(printed)
    assert password is not None, printed
    return password.group(1), LOGIN.findall(printed), API_KEY.findall(printed)


async def _bath_and_sos_are_offered(
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    password: str,
    now: datetime,
) -> str:
    """The walk-through's first step at ``now``: Li Guilan orders a bath as soon as possible
    and presses SOS; one dispatcher pass seconds later offers both (none is escalated).
    Returns the bath's order id."""
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    senior = await _token(client, LI_GUILAN, password)
    r = await client.post(
        "/v1/orders",
        json={"service_code": "bathing", "notes": "Please bring a shower chair."},
        headers={**senior, "Idempotency-Key": "readme-1"},
    )
    assert r.status_code == 201, r.text
    bath = r.json()["id"]
    r = await client.post("/v1/sos", headers=senior)
    assert r.status_code == 201, r.text
    sos = r.json()["id"]

    await run_once(sessionmaker, settings, now + timedelta(seconds=2))

    operator = await _token(client, "operator", password)
    for order_id, kind in ((bath, "offer"), (sos, "emergency")):
        r = await client.get(f"/v1/ops/orders/{order_id}", headers=operator)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "offered", (now, r.json())
        assert r.json()["offered_to"]
        r = await client.get(f"/v1/ops/orders/{order_id}/decisions", headers=operator)
        assert [d["kind"] for d in r.json()] == [kind], r.json()
    return str(bath)


class TestSeedDemo:
    async def test_loads_the_district(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        printed = await seed_demo(settings, if_empty=True)
        assert "Loaded the demo district" in printed

        async with sessionmaker() as session:
            roles, statuses = await _counts(session)
            assert roles == {
                Role.admin: 1,
                Role.operator: 1,
                Role.provider: 3,
                Role.caregiver: 40,
                Role.senior: 200,
            }
            assert set(statuses) == {
                OrderStatus.pending,
                OrderStatus.assigned,
                OrderStatus.in_progress,
                OrderStatus.completed,
                OrderStatus.cancelled,
            }
            rated = (
                await session.scalars(
                    select(Order.rating).where(Order.status == OrderStatus.completed)
                )
            ).all()
            assert rated
            assert all(r is not None for r in rated)

            seniors = (await session.scalars(select(Senior))).all()
            for senior in seniors:
                assert LAT[0] <= senior.lat <= LAT[1], senior
                assert LON[0] <= senior.lon <= LON[1], senior
                assert PHONE.match(senior.phone), senior.phone
                assert senior.address
                assert senior.neighbourhood
                assert senior.emergency_contacts
            assert len({s.phone for s in seniors}) == 200
            assert len({s.neighbourhood for s in seniors}) >= 6
            assert any(s.gender_strict for s in seniors)
            assert any("sxn" in s.languages for s in seniors)
            kinds = set((await session.scalars(select(CaregiverPreference.kind))).all())
            assert {k.value for k in kinds} == {"preferred", "blocked"}

            caregivers = (await session.scalars(select(Caregiver))).all()
            assert {c.gender.value for c in caregivers} == {"female", "male"}
            assert {"en", "sxn"} <= {lang for c in caregivers for lang in c.languages}
            assert len({c.service_radius_m for c in caregivers}) > 1
            for caregiver in caregivers:
                if caregiver.on_duty:
                    assert caregiver.lat is not None
                    assert caregiver.position_at is not None
                    assert LAT[0] <= caregiver.lat <= LAT[1]
            today = datetime.now(UTC).date()
            expiries = (await session.scalars(select(CaregiverSkill.certificate_expires_on))).all()
            assert any(d is not None and d < today for d in expiries)
            assert len(set((await session.scalars(select(CaregiverSkill.skill))).all())) == 8
            shifts = (await session.scalars(select(Shift))).all()
            assert all(s.starts_at.tzinfo is not None for s in shifts)
            now = datetime.now(UTC)
            assert any(s.starts_at > now + timedelta(hours=6) for s in shifts)  # tomorrow

            # The real services wrote every transition's history row and outbox event.
            history = await session.scalar(select(func.count()).select_from(OrderStatusHistory))
            events = await session.scalar(select(func.count()).select_from(OutboxEvent))
            assert history == events
            assert history is not None
            assert history > sum(statuses.values())
            assert await session.scalar(select(func.count()).select_from(Visit))

    async def test_if_empty_loads_nothing_the_second_time(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        await seed_demo(settings, if_empty=True)
        async with sessionmaker() as session:
            before = await _counts(session)

        again = await seed_demo(settings, if_empty=True)
        assert "nothing was loaded" in again
        assert LOGIN.findall(again)  # still tells how to log in
        assert "exists already" in await seed_demo(settings, if_empty=False)
        async with sessionmaker() as session:
            assert await _counts(session) == before

    async def test_printed_log_ins_work(self, client: AsyncClient, settings: Settings) -> None:
        password, logins, keys = _logins(await seed_demo(settings, if_empty=True))
        assert {role for role, _ in logins} == {"admin", "operator", "caregiver", "senior"}
        for role, login in logins:
            r = await client.post("/v1/auth/token", data={"username": login, "password": password})
            assert r.status_code == 200, (login, r.text)
            assert r.json()["role"] == role
        assert len(keys) == 3
        for key in keys:
            r = await client.get("/v1/provider/caregivers", headers={"X-API-Key": key})
            assert r.status_code == 200, r.text
            assert r.json()["items"]

        operator = await _token(client, "operator", password)
        r = await client.get("/v1/ops/queue", headers=operator)
        assert r.status_code == 200, r.text
        assert r.json()["items"][0]["priority"] == "emergency"  # the SOS waits at the top

    @pytest.mark.parametrize("clock", [(0, 30), (8, 0), (20, 0)], ids=["00:30", "08:00", "20:00"])
    async def test_readme_walk_through_at_any_hour(
        self,
        client: AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: tuple[int, int],
    ) -> None:
        """The README's curl session, step by step, on the demo seeded at that district time:
        the dispatcher offers the bath (and an SOS) at once, then the operator assigns it."""
        now = xian(*clock)
        password, logins, _ = _logins(await seed_demo(settings, if_empty=True, now=now))
        assert ("senior", LI_GUILAN) in logins
        assert ("caregiver", ZHANG_MIN) in logins
        order_id = await _bath_and_sos_are_offered(client, sessionmaker, settings, password, now)

        client.app.dependency_overrides[get_now] = lambda: now + timedelta(minutes=1)  # type: ignore[attr-defined]
        operator = await _token(client, "operator", password)
        r = await client.get("/v1/ops/caregivers", params={"limit": 100}, headers=operator)
        caregiver_id = next(c["id"] for c in r.json()["items"] if c["phone"] == "+86" + ZHANG_MIN)
        r = await client.post(
            f"/v1/ops/orders/{order_id}/assign",
            json={"caregiver_id": caregiver_id, "reason": "Nearest with a bathing certificate"},
            headers=operator,
        )
        assert r.status_code == 200, r.text

        client.app.dependency_overrides[get_now] = lambda: now + timedelta(minutes=20)  # type: ignore[attr-defined]
        caregiver = await _token(client, ZHANG_MIN, password)
        r = await client.get("/v1/visits", headers=caregiver)
        visit_id = next(v["id"] for v in r.json()["items"] if v["order_id"] == order_id)
        home = (await client.get(f"/v1/visits/{visit_id}", headers=caregiver)).json()["senior"]
        r = await client.post(
            f"/v1/visits/{visit_id}/check-in",
            json={"lat": home["lat"], "lon": home["lon"]},
            headers=caregiver,
        )
        assert r.status_code == 200, r.text
        client.app.dependency_overrides[get_now] = lambda: now + timedelta(minutes=80)  # type: ignore[attr-defined]
        r = await client.post(
            f"/v1/visits/{visit_id}/check-out", json={"notes": "Bathed."}, headers=caregiver
        )
        assert r.status_code == 200, r.text
        senior = await _token(client, LI_GUILAN, password)
        r = await client.post(f"/v1/orders/{order_id}/rating", json={"score": 5}, headers=senior)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "completed"


async def _demo_caregivers(session: AsyncSession) -> list[Caregiver]:
    return list(
        (
            await session.scalars(
                select(Caregiver)
                .join(Provider, Provider.id == Caregiver.provider_id)
                .join(District, District.id == Provider.district_id)
                .where(District.code == "lianhu")
                .options(selectinload(Caregiver.shifts), selectinload(Caregiver.skills))
                .order_by(Caregiver.phone)
            )
        ).all()
    )


def _valid(caregiver: Caregiver, skill: str, on: date) -> bool:
    return any(
        s.skill == skill and (s.certificate_expires_on is None or s.certificate_expires_on > on)
        for s in caregiver.skills
    )


async def _duty_matches_shifts(session: AsyncSession, now: datetime) -> list[Caregiver]:
    """Everyone in shift now is on duty with a fresh position, everyone else off duty (but
    whoever is at a senior's door); every skill is held by someone in shift at every
    half-hour of the next 48 h with time left for the longest visit. Returns the caregivers."""
    caregivers = await _demo_caregivers(session)
    working = set(
        (
            await session.scalars(
                select(Visit.caregiver_id).where(Visit.status == VisitStatus.in_progress)
            )
        ).all()
    )
    assert len(caregivers) == 40
    for c in caregivers:
        in_shift = any(s.starts_at <= now < s.ends_at for s in c.shifts)
        assert c.on_duty == (in_shift or c.id in working), (c.name, now)
        if c.on_duty:
            assert c.lat is not None
            assert c.lon is not None
            assert c.position_at is not None
            assert now - timedelta(minutes=10) <= c.position_at <= now
            assert LAT[0] <= c.lat <= LAT[1]
            assert LON[0] <= c.lon <= LON[1]
    readme = {"+86" + ZHANG_MIN, "+86" + LIU_JIANJUN}
    assert all(c.on_duty for c in caregivers if c.phone in readme)  # on call at any hour
    crews = [c for c in caregivers if c.phone not in readme]
    today = now.astimezone(XIAN).date()
    for step in range(0, 48 * 2 + 1):
        t = now + timedelta(minutes=30 * step)
        for skill in ALL_SKILLS:
            assert any(
                _valid(c, skill, today)
                and any(s.starts_at <= t and t + LONGEST_VISIT <= s.ends_at for s in c.shifts)
                for c in crews
            ), (skill, t.astimezone(XIAN))
    return caregivers


class TestRoundTheClock:
    async def test_seeded_at_any_hour_crews_in_shift_are_on_duty(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        now = xian(0, 30)
        printed = await seed_demo(settings, if_empty=True, now=now)
        assert "Loaded the demo district" in printed
        async with sessionmaker() as session:
            caregivers = await _duty_matches_shifts(session, now)
        on = sum(c.on_duty for c in caregivers)
        assert 10 < on < len(caregivers)  # a night: the night and evening crews, not the day's

    @pytest.mark.parametrize("clock", [(6, 55), (22, 55)], ids=["06:55", "22:55"])
    async def test_every_service_can_be_dispatched_just_before_a_handover(
        self,
        client: AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: tuple[int, int],
    ) -> None:
        """Minutes before a crew comes on: the crews in shift have the least time left, the
        next is not on duty yet. Each service in the catalogue, ordered ASAP by Li Guilan
        (Tumen, at the district's edge), is offered in the next pass."""
        now = xian(*clock)
        password, _, _ = _logins(await seed_demo(settings, if_empty=True, now=now))
        client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
        senior = await _token(client, LI_GUILAN, password)
        services = (await client.get("/v1/services", headers=senior)).json()
        assert len(services) == 10
        for i, service in enumerate(services):
            at = now + timedelta(seconds=10 * i)
            client.app.dependency_overrides[get_now] = _clock(at)  # type: ignore[attr-defined]
            r = await client.post(
                "/v1/orders", json={"service_code": service["code"]}, headers=senior
            )
            assert r.status_code == 201, r.text
            order = r.json()
            await run_once(sessionmaker, settings, at + timedelta(seconds=2))
            r = await client.get(f"/v1/orders/{order['id']}", headers=senior)
            assert r.json()["status"] == "offered", (service["code"], r.json())
            # Out of the way of the next service's order.
            r = await client.post(
                f"/v1/orders/{order['id']}/cancel", json={"reason": "Tried"}, headers=senior
            )
            assert r.status_code == 200, r.text

    async def test_walk_through_three_days_later(
        self,
        client: AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Seeded at T, started again (seed-demo --if-empty) at T + 3 days: the rosters were
        topped up, so the walk-through offers as on the first day."""
        seeded = xian(20, 0)
        password, _, _ = _logins(await seed_demo(settings, if_empty=True, now=seeded))
        later = seeded + timedelta(days=3)

        printed = await seed_demo(settings, if_empty=True, now=later)

        assert "nothing was loaded" in printed
        assert "Refreshed the demo district" in printed
        assert LOGIN.findall(printed)
        async with sessionmaker() as session:
            await _duty_matches_shifts(session, later)
        await _bath_and_sos_are_offered(client, sessionmaker, settings, password, later)

    async def test_refresh_twice_adds_nothing_and_turns_crews_over(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        seeded = xian(8, 0)
        await seed_demo(settings, if_empty=True, now=seeded)
        async with sessionmaker() as session:
            on_before = {c.id for c in await _demo_caregivers(session) if c.on_duty}
        later = seeded + timedelta(days=3, hours=12)  # 20:00: the evening crew came on

        first = await seed_demo(settings, if_empty=True, now=later)
        async with sessionmaker() as session:
            shifts = await session.scalar(select(func.count()).select_from(Shift))
            caregivers = await _duty_matches_shifts(session, later)
            on_after = {c.id for c in caregivers if c.on_duty}
        assert on_after - on_before  # came on duty
        assert on_before - on_after  # went off duty
        assert "0 shifts added" not in first

        again = await seed_demo(settings, if_empty=True, now=later + timedelta(minutes=5))
        assert "0 shifts added" in again
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Shift)) == shifts
            assert {c.id for c in await _demo_caregivers(session) if c.on_duty} == on_after

    async def test_refresh_leaves_orders_other_districts_and_operators_work_alone(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        seeded = xian(8, 0)
        # Another district, whose caregiver happens to work the demo's day-crew hours.
        async with sessionmaker() as session, session.begin():
            other = await _other_district(session, settings, seeded)
        # The demo loads beside it (not --if-empty: the database has accounts already).
        assert "Loaded" in await seed_demo(settings, if_empty=False, now=seeded)
        later = seeded + timedelta(days=3)
        async with sessionmaker() as session, session.begin():
            # The duty desk's own changes to the demo: a newcomer with a shift of her own, and
            # an extra shift in the future for a crew caregiver where his crew's would go.
            newcomer, extra = await _operator_changes(session, later)
        async with sessionmaker() as session:
            before = await _snapshot(session, other, newcomer, extra)

        await seed_demo(settings, if_empty=True, now=later)

        async with sessionmaker() as session:
            assert await _snapshot(session, other, newcomer, extra) == before
            # The demo itself was refreshed: the crew caregiver's roster runs on.
            crew_shifts = (
                await session.scalars(select(Shift).where(Shift.caregiver_id == extra[0]))
            ).all()
            assert max(s.ends_at for s in crew_shifts) >= later + timedelta(hours=48)
            [shift] = (
                await session.scalars(
                    select(Shift).where(
                        Shift.caregiver_id == extra[0],
                        Shift.starts_at < extra[2],
                        Shift.ends_at > extra[1],
                    )
                )
            ).all()
            assert (shift.starts_at, shift.ends_at) == extra[1:]  # no crew shift over it


async def _other_district(session: AsyncSession, settings: Settings, now: datetime) -> uuid.UUID:
    """Beilin: an operator, a provider, a caregiver off duty on a day-crew shift (07:00 for
    12 h), a senior with a pending order. Returns the caregiver's id."""
    district = await accounts.create_district(
        session, DistrictIn(code="beilin", name="Beilin", city="Xi'an")
    )
    op = await accounts.create_operator(
        session,
        OperatorIn(
            login="op.beilin", password="x" * 12, name="Beilin desk", district_id=district.id
        ),
    )
    operator = Principal(id=op.id, role=Role.operator, district_id=district.id)
    provider, _ = await accounts.create_provider(
        session, operator, ProviderIn(login="prov.beilin", name="Beilin Care")
    )
    day = now.astimezone(XIAN).date()
    caregiver = await accounts.create_caregiver(
        session,
        operator,
        caregiver_in(
            provider.id,
            "13511112222",
            now,
            shifts=[ShiftIn(starts_at=xian(7, day=day), ends_at=xian(19, day=day))],
        ),
    )
    caregiver.lat, caregiver.lon, caregiver.position_at = 34.26, 108.95, now - timedelta(days=1)
    senior = await accounts.create_senior(session, operator, senior_in("13611112222"), now=now)
    await orders.place(
        session,
        Principal(id=senior.id, role=Role.senior, district_id=district.id),
        OrderIn(service_code="cleaning"),
        settings=settings,
        idempotency_key=None,
        now=now,
    )
    return caregiver.id


async def _operator_changes(
    session: AsyncSession, now: datetime
) -> tuple[uuid.UUID, tuple[uuid.UUID, datetime, datetime]]:
    op = await session.scalar(select(Account).where(Account.login == "operator"))
    assert op is not None
    operator = Principal(id=op.id, role=Role.operator, district_id=op.district_id)
    provider = await session.scalar(select(Account).where(Account.login == "provider.anxin"))
    assert provider is not None
    newcomer = await accounts.create_caregiver(
        session,
        operator,
        caregiver_in(
            provider.id,
            "13522223333",
            now,
            shifts=[ShiftIn(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=3))],
        ),
    )
    crew = next(
        c
        for c in await _demo_caregivers(session)
        if any(
            s.starts_at.astimezone(XIAN).hour == 7
            and s.ends_at - s.starts_at == timedelta(hours=12)
            for s in c.shifts
        )
    )
    # Tomorrow (district time) from 10:00 to 14:00: the day crew's shift would overlap it.
    day = now.astimezone(XIAN).date() + timedelta(days=1)
    starts, ends = xian(10, day=day), xian(14, day=day)
    await accounts.add_shift(session, operator, crew.id, starts_at=starts, ends_at=ends)
    return newcomer.id, (crew.id, starts, ends)


async def _snapshot(
    session: AsyncSession,
    other: uuid.UUID,
    newcomer: uuid.UUID,
    extra: tuple[uuid.UUID, datetime, datetime],
) -> dict[str, Any]:
    """Everything a refresh must leave as it is."""

    async def rows(stmt: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in (await session.execute(stmt)).all()]

    def caregiver(cid: uuid.UUID) -> Any:
        return select(Caregiver.on_duty, Caregiver.lat, Caregiver.lon, Caregiver.position_at).where(
            Caregiver.id == cid
        )

    def shifts(cid: uuid.UUID) -> Any:
        return (
            select(Shift.starts_at, Shift.ends_at)
            .where(Shift.caregiver_id == cid)
            .order_by(Shift.starts_at)
        )

    return {
        "orders": await rows(
            select(
                Order.id, Order.status, Order.version, Order.caregiver_id, Order.updated_at
            ).order_by(Order.id)
        ),
        "visits": await rows(select(Visit.id, Visit.status, Visit.caregiver_id).order_by(Visit.id)),
        "offers": await rows(select(Offer.id, Offer.status).order_by(Offer.id)),
        "history": await session.scalar(select(func.count()).select_from(OrderStatusHistory)),
        "outbox": await session.scalar(select(func.count()).select_from(OutboxEvent)),
        "accounts": await rows(
            select(Account.id, Account.login, Account.is_active).order_by(Account.id)
        ),
        "skills": await rows(
            select(
                CaregiverSkill.caregiver_id,
                CaregiverSkill.skill,
                CaregiverSkill.certificate_expires_on,
            ).order_by(CaregiverSkill.caregiver_id, CaregiverSkill.skill)
        ),
        "other": await rows(caregiver(other)),
        "other shifts": await rows(shifts(other)),
        "newcomer": await rows(caregiver(newcomer)),
        "newcomer shifts": await rows(shifts(newcomer)),
    }
