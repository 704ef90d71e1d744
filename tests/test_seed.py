"""The demo district that `doorstep seed-demo` loads, and the log-ins it prints."""

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import (
    Account,
    Caregiver,
    CaregiverPreference,
    CaregiverSkill,
    Order,
    OrderStatus,
    OrderStatusHistory,
    OutboxEvent,
    Role,
    Senior,
    Shift,
    Visit,
)
from app.seed import seed_demo

# Lianhu District, Xi'an.
LAT = (34.255, 34.285)
LON = (108.88, 108.95)
PASSWORD = re.compile(r"password for all: (\S+?)\)")
LOGIN = re.compile(r"^ {2}(admin|operator|caregiver|senior) +(\S+)", re.MULTILINE)
API_KEY = re.compile(r"^ {2}provider\.\w+ +(dsk_\S+)$", re.MULTILINE)
PHONE = re.compile(r"^1[358][0-9]{9}$")


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

    async def test_readme_walk_through(self, client: AsyncClient, settings: Settings) -> None:
        """The README's curl session, step by step, on the demo data."""
        password, logins, _ = _logins(await seed_demo(settings, if_empty=True))
        senior_login = next(login for role, login in logins if role == "senior")
        caregiver_login = next(login for role, login in logins if role == "caregiver")
        senior = await _token(client, senior_login, password)
        r = await client.post(
            "/v1/orders",
            json={"service_code": "bathing", "notes": "Please bring a shower chair."},
            headers={**senior, "Idempotency-Key": "readme-1"},
        )
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]

        operator = await _token(client, "operator", password)
        r = await client.get("/v1/ops/caregivers", params={"limit": 100}, headers=operator)
        caregiver_id = next(c["id"] for c in r.json()["items"] if c["phone"] == caregiver_login)
        r = await client.post(
            f"/v1/ops/orders/{order_id}/assign",
            json={"caregiver_id": caregiver_id, "reason": "Nearest with a bathing certificate"},
            headers=operator,
        )
        assert r.status_code == 200, r.text

        caregiver = await _token(client, caregiver_login, password)
        r = await client.get("/v1/visits", headers=caregiver)
        visit_id = next(v["id"] for v in r.json()["items"] if v["order_id"] == order_id)
        home = (await client.get(f"/v1/visits/{visit_id}", headers=caregiver)).json()["senior"]
        r = await client.post(
            f"/v1/visits/{visit_id}/check-in",
            json={"lat": home["lat"], "lon": home["lon"]},
            headers=caregiver,
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/v1/visits/{visit_id}/check-out", json={"notes": "Bathed."}, headers=caregiver
        )
        assert r.status_code == 200, r.text
        r = await client.post(f"/v1/orders/{order_id}/rating", json={"score": 5}, headers=senior)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "completed"
