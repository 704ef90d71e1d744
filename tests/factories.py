"""Builds a small two-district world through the real services (no HTTP, no shortcuts)."""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal, get_now
from app.models import Account, Gender, Role
from app.schemas.people import (
    CaregiverIn,
    DistrictIn,
    EmergencyContact,
    OperatorIn,
    ProviderIn,
    SeniorIn,
    ShiftIn,
    SkillIn,
)
from app.security import create_access_token, hash_password
from app.services import accounts

PASSWORD = "correct horse battery"
ALL_SKILLS = [
    "housekeeping",
    "bathing",
    "personal_care",
    "nursing",
    "medication",
    "escort",
    "rehabilitation",
    "first_aid",
]
# Lianhu District, Xi'an
HOME = (34.2655, 108.9081)
NEAR_HOME = (34.2660, 108.9085)  # about 65 m away
FAR = (34.2800, 108.9300)  # about 2.6 km away


@dataclass
class Person:
    id: uuid.UUID
    token: str
    login: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    district_a: uuid.UUID
    district_b: uuid.UUID
    admin: Person
    operator_a: Person
    operator_b: Person
    provider_a: Person
    provider_a_key: str
    provider_b_key: str
    nurse: Person  # district A, every skill, female
    helper: Person  # district A, housekeeping only, bathing certificate expired, male
    other_caregiver: Person  # district B
    senior: Person  # district A
    neighbour: Person  # district A, another senior
    far_senior: Person  # district B
    extra: dict[str, Person] = field(default_factory=dict)

    @property
    def provider_a_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.provider_a_key}

    def caregiver(self, caregiver_id: uuid.UUID) -> Person:
        people = [self.nurse, self.helper, self.other_caregiver, *self.extra.values()]
        return next(p for p in people if p.id == caregiver_id)


async def ready(client: AsyncClient, who: Person, at: tuple[float, float] = NEAR_HOME) -> None:
    """The caregiver goes on duty and reports a position (near the seniors' homes by default),
    through the API as their phone would: what an operator expects of someone they assign
    an ASAP visit to (the engine's rules hold a manual assignment to it)."""
    r = await client.put("/v1/caregivers/me/duty", json={"on_duty": True}, headers=who.auth)
    assert r.status_code == 200, r.text
    r = await client.put(
        "/v1/caregivers/me/position", json={"lat": at[0], "lon": at[1]}, headers=who.auth
    )
    assert r.status_code == 200, r.text


def _token(settings: Settings, account_id: uuid.UUID, role: Role) -> str:
    return create_access_token(settings, account_id=account_id, role=role)[0]


def _op(account: Account) -> Principal:
    return Principal(id=account.id, role=account.role, district_id=account.district_id)


def senior_in(phone: str, **overrides: object) -> SeniorIn:
    values: dict[str, object] = {
        "name": f"Senior {phone[-4:]}",
        "phone": phone,
        "password": PASSWORD,
        "gender": Gender.female,
        "address": f"Room {phone[-3:]}, 118 Laodong Road",
        "neighbourhood": "Tumen",
        "lat": HOME[0],
        "lon": HOME[1],
        "languages": ["zh"],
        "care_notes": "Type 2 diabetes; uses a walker.",
        "emergency_contacts": [
            EmergencyContact(name="Li Wei", phone="13900009999", relation="son")
        ],
    }
    values.update(overrides)
    return SeniorIn.model_validate(values)


def caregiver_in(
    provider_id: uuid.UUID, phone: str, now: datetime, **overrides: object
) -> CaregiverIn:
    values: dict[str, object] = {
        "provider_id": provider_id,
        "name": f"Caregiver {phone[-4:]}",
        "phone": phone,
        "password": PASSWORD,
        "gender": Gender.female,
        "languages": ["zh"],
        "skills": [SkillIn(skill=s, certificate_expires_on=date(2099, 1, 1)) for s in ALL_SKILLS],
        "shifts": [ShiftIn(starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=10))],
    }
    values.update(overrides)
    return CaregiverIn.model_validate(values)


async def build_world(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> World:
    async with sessionmaker() as session, session.begin():
        admin = Account(
            role=Role.admin,
            login="admin",
            password_hash=await hash_password(PASSWORD),
            display_name="Admin",
        )
        session.add(admin)
        da = await accounts.create_district(
            session, DistrictIn(code="lianhu", name="Lianhu", city="Xi'an")
        )
        db = await accounts.create_district(
            session, DistrictIn(code="beilin", name="Beilin", city="Xi'an")
        )
        op_a = await accounts.create_operator(
            session,
            OperatorIn(login="op.a", password=PASSWORD, name="Operator A", district_id=da.id),
        )
        op_b = await accounts.create_operator(
            session,
            OperatorIn(login="op.b", password=PASSWORD, name="Operator B", district_id=db.id),
        )
        pa, key_a = await accounts.create_provider(
            session, _op(op_a), ProviderIn(login="prov.a", name="Anxin Care")
        )
        _pb, key_b = await accounts.create_provider(
            session, _op(op_b), ProviderIn(login="prov.b", name="Beilin Care")
        )
        nurse = await accounts.create_caregiver(
            session, _op(op_a), caregiver_in(pa.id, "13700000001", now, name="Nurse Zhang")
        )
        helper = await accounts.create_caregiver(
            session,
            _op(op_a),
            caregiver_in(
                pa.id,
                "13700000002",
                now,
                name="Helper Liu",
                gender=Gender.male,
                skills=[
                    SkillIn(skill="housekeeping"),
                    SkillIn(skill="bathing", certificate_expires_on=date(2020, 1, 1)),
                ],
            ),
        )
        other = await accounts.create_caregiver(
            session, _op(op_b), caregiver_in(_pb.id, "13700000003", now, name="Beilin Wu")
        )
        senior = await accounts.create_senior(session, _op(op_a), senior_in("13900000001"), now=now)
        neighbour = await accounts.create_senior(
            session, _op(op_a), senior_in("13900000002", name="Neighbour Chen"), now=now
        )
        far = await accounts.create_senior(session, _op(op_b), senior_in("13900000003"), now=now)
        await session.flush()

        # Logins as stored: seniors' and caregivers' phones in E.164 (any written form logs in).
        def person(account_id: uuid.UUID, role: Role, login: str = "") -> Person:
            return Person(account_id, _token(settings, account_id, role), login)

        return World(
            district_a=da.id,
            district_b=db.id,
            admin=person(admin.id, Role.admin, "admin"),
            operator_a=person(op_a.id, Role.operator, "op.a"),
            operator_b=person(op_b.id, Role.operator, "op.b"),
            provider_a=person(pa.id, Role.provider),
            provider_a_key=key_a,
            provider_b_key=key_b,
            nurse=person(nurse.id, Role.caregiver, "+8613700000001"),
            helper=person(helper.id, Role.caregiver, "+8613700000002"),
            other_caregiver=person(other.id, Role.caregiver, "+8613700000003"),
            senior=person(senior.id, Role.senior, "+8613900000001"),
            neighbour=person(neighbour.id, Role.senior, "+8613900000002"),
            far_senior=person(far.id, Role.senior, "+8613900000003"),
        )


async def resend_shed(client: AsyncClient, responses: list[Response]) -> list[Response]:
    """Responses to many requests sent at once, with each one shed with 503 (nothing saved)
    sent again, as a client does after Retry-After: more requests than the pool has
    connections, all queued behind one row lock, are shed rather than kept waiting
    (``overloaded``); on a loaded machine SQLite's write lock may also outlast its busy
    timeout (``busy``)."""
    settled = []
    for r in responses:
        for _ in range(10):
            if r.status_code != 503:
                break
            assert r.headers["Retry-After"] == "1"
            assert r.json()["code"] in {"overloaded", "busy"}
            r = await client.send(r.request)
        settled.append(r)
    return settled


def at(client: AsyncClient, moment: datetime) -> None:
    """Set the API's clock."""
    client.app.dependency_overrides[get_now] = lambda: moment  # type: ignore[attr-defined]
