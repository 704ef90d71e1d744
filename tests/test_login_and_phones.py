"""Issue 11, accounts: a log-in that tells a stranger nothing (one answer, one hash
verification for an unknown login, a wrong password and a disabled account), phone numbers
in E.164 (every written form of one number is one account), and registration that does not
tell an operator whose a taken number is."""

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from httpx import AsyncClient, Response
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import app.security
from app.db import ensure_database
from app.models import Account
from tests.conftest import DATABASE_URL, IS_POSTGRES
from tests.factories import PASSWORD, World, resend_shed, senior_in
from tests.pg_setup import _empty
from tests.test_auth import assert_problem, deactivate

ROOT = Path(__file__).resolve().parent.parent
_VARYING = {"x-request-id", "date", "content-length"}


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Argon2 verification the server runs (the hash it verified against)."""
    hasher = app.security._password_hash
    calls: list[str] = []
    verify = hasher.verify

    def counting(password: str, hash: str | bytes) -> bool:
        calls.append(str(hash))
        return verify(password, hash)

    monkeypatch.setattr(hasher, "verify", counting)
    return calls


def _answer(r: Response) -> tuple[int, dict[str, str], dict[str, Any]]:
    """What a client sees, apart from what differs per request (its id, the date)."""
    body = r.json()
    body.pop("request_id", None)
    body.pop("instance", None)
    headers = {k: v for k, v in r.headers.items() if k.lower() not in _VARYING}
    return r.status_code, headers, body


@pytest.mark.parametrize(
    "how",
    [
        ("/v1/auth/token", lambda login, pw: {"data": {"username": login, "password": pw}}),
        ("/v1/auth/session", lambda login, pw: {"json": {"login": login, "password": pw}}),
    ],
    ids=["token", "web-session"],
)
async def test_unknown_wrong_and_disabled_get_one_answer_after_one_hash_each(
    client: AsyncClient,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    verifications: list[str],
    how: tuple[str, Any],
) -> None:
    path, body = how
    await deactivate(sessionmaker, world.neighbour.id)
    answers = []
    for login, password in (
        ("13911112222", PASSWORD),  # nobody's phone
        (world.senior.login, PASSWORD + "!"),  # a wrong password
        (world.neighbour.login, PASSWORD),  # a disabled account, the right password
    ):
        before = len(verifications)
        r = await client.post(path, **body(login, password))
        assert_problem(r, 401, "bad_credentials")
        assert len(verifications) == before + 1, (login, verifications[before:])
        answers.append(_answer(r))
    assert answers[0] == answers[1] == answers[2]
    assert "disabled" not in str(answers[0])
    # The unknown login was verified against a hash as costly as a real one.
    params = [h.rsplit("$", 2)[0] for h in verifications]
    assert len(set(params)) == 1, params


async def test_the_log_in_page_says_the_same_to_a_disabled_account(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    form = {"next": "/app", "password": PASSWORD}
    wrong = await client.post("/login", data={**form, "login": "13900000001", "password": "no!"})
    await deactivate(sessionmaker, world.senior.id)
    disabled = await client.post("/login", data={**form, "login": "13900000001"})
    assert disabled.status_code == wrong.status_code == 401
    assert disabled.text == wrong.text


@pytest.mark.parametrize(
    "written", ["13900000001", "+86 139 0000 0001", "139-0000-0001", "008613900000001"]
)
async def test_any_written_form_of_the_phone_logs_in(
    client: AsyncClient, world: World, written: str
) -> None:
    r = await client.post("/v1/auth/token", data={"username": written, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["account_id"] == str(world.senior.id)


async def test_a_phone_is_stored_in_e164_and_a_second_written_form_is_the_conflict(
    client: AsyncClient, world: World
) -> None:
    body = senior_in("13900000077").model_dump(mode="json")
    r = await client.post(
        "/v1/ops/seniors",
        json={**body, "phone": "+86 139 0000 0077", "emergency_contacts": []},
        headers=world.operator_a.auth,
    )
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == "+8613900000077"
    r = await client.post("/v1/auth/session", json={"login": "139-0000-0077", "password": PASSWORD})
    assert r.status_code == 201, r.text

    again = await client.post(
        "/v1/ops/seniors",
        json={**body, "phone": "0086 139 0000 0077", "name": "Someone Else"},
        headers=world.operator_a.auth,
    )
    assert_problem(again, 409, "login_taken")


async def test_emergency_contacts_phones_are_e164_and_bad_ones_name_the_field(
    client: AsyncClient, world: World
) -> None:
    body = senior_in("13900000078").model_dump(mode="json")
    body["emergency_contacts"] = [{"name": "Li Wei", "phone": "137 0000 9999", "relation": "son"}]
    r = await client.post("/v1/ops/seniors", json=body, headers=world.operator_a.auth)
    assert r.status_code == 201, r.text
    assert r.json()["emergency_contacts"][0]["phone"] == "+8613700009999"

    body = {**senior_in("13900000079").model_dump(mode="json"), "phone": "12900000001"}
    r = await client.post("/v1/ops/seniors", json=body, headers=world.operator_a.auth)
    problem = assert_problem(r, 422, "validation_error")
    assert "phone" in str(problem)


async def test_a_taken_phone_is_the_same_409_whoever_and_wherever_it_belongs_to(
    client: AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Operator B learns that the number cannot be registered, nothing of whose it is or in
    which district; the refusal is logged with ids for an administrator."""

    async def register(operator: Any, phone: str) -> Response:
        body = senior_in("13900000080").model_dump(mode="json")
        return await client.post(
            "/v1/ops/seniors", json={**body, "phone": phone}, headers=operator.auth
        )

    with caplog.at_level(logging.WARNING, logger="app.services.accounts"):
        elsewhere = await register(world.operator_b, "+86 139 0000 0001")  # district A's senior
        own = await register(world.operator_b, "13900000003")  # district B's own senior
        caregiver = await register(world.operator_b, "13700000001")  # A's caregiver
    answers = [_answer(r) for r in (elsewhere, own, caregiver)]
    assert_problem(elsewhere, 409, "login_taken")
    assert answers[0] == answers[1] == answers[2]
    text = elsewhere.text
    for secret in ("139", str(world.district_a), str(world.senior.id), "district"):
        assert secret not in text, secret
    refused = [r for r in caplog.records if getattr(r, "event", "") == "registration_refused"]
    assert refused[0].holder_account_id == str(world.senior.id)  # type: ignore[attr-defined]
    assert all("139" not in r.getMessage() for r in refused)


async def test_concurrent_registrations_of_one_number_in_two_districts_make_one_account(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Both operators check the number at once and find it free: the unique login decides,
    and the loser gets the same 409 as if it had been found (not a 500, nothing of whose)."""
    body = senior_in("13900000090").model_dump(mode="json")
    forms = ["13900000090", "+86 139 0000 0090", "139-0000-0090", "0086 139 0000 0090"]
    operators = [world.operator_a, world.operator_b] * 2
    responses = await asyncio.gather(
        *(
            client.post("/v1/ops/seniors", json={**body, "phone": form}, headers=op.auth)
            for form, op in zip(forms, operators, strict=True)
        )
    )
    responses = await resend_shed(client, list(responses))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409], [r.text for r in responses]
    answers = [_answer(r) for r in responses if r.status_code == 409]
    assert all(a == answers[0] for a in answers)
    assert answers[0][2]["code"] == "login_taken"
    async with sessionmaker() as session:
        logins = (
            await session.scalars(sa.select(Account.login).where(Account.login.like("%0090")))
        ).all()
    assert logins == ["+8613900000090"]


# --------------------------------------------------------------------------------------------
# Migration 0007 on an old-format database
# --------------------------------------------------------------------------------------------


def _alembic(url: str, revision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", url)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, revision)


def _scratch_url(tmp_path: Path) -> str:
    """A database of its own next to the test database (migrated from nothing)."""
    if not IS_POSTGRES:
        return f"sqlite+aiosqlite:///{tmp_path / 'migration.db'}"
    parsed = make_url(DATABASE_URL)
    url = parsed.set(database=f"{parsed.database}_migration").render_as_string(hide_password=False)

    async def fresh() -> None:
        await ensure_database(url)
        await _empty(url)

    asyncio.run(fresh())
    return url


async def _run(url: str, statements: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    from app.config import Settings
    from app.db import create_engine

    engine = create_engine(Settings(database_url=url))
    out = []
    try:
        async with engine.begin() as conn:
            for sql, params in statements:
                result = await conn.execute(sa.text(sql), params)
                out.append(result.all() if result.returns_rows else None)
    finally:
        await engine.dispose()
    return out


def test_migration_0007_converts_old_phones_and_logins_to_e164(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _scratch_url(tmp_path)
    _alembic(url, "0006", monkeypatch)
    district, senior, carer, provider, operator = (uuid.uuid4() for _ in range(5))
    u = (lambda i: i.hex) if not IS_POSTGRES else str
    contacts = '[{"name": "Li Wei", "phone": "139-0000-9999", "relation": "son"}]'
    insert_account = (
        "INSERT INTO account (id, role, login, password_hash, display_name, district_id, "
        "is_active, created_at) VALUES (:id, :role, :login, 'x', 'n', :d, true, "
        "CURRENT_TIMESTAMP)"
    )
    asyncio.run(
        _run(
            url,
            [
                (
                    "INSERT INTO district (id, code, name, city, time_zone, created_at) "
                    "VALUES (:id, 'd', 'D', 'C', 'Asia/Shanghai', CURRENT_TIMESTAMP)",
                    {"id": u(district)},
                ),
                (
                    insert_account,
                    {"id": u(senior), "role": "senior", "login": "13900000001", "d": u(district)},
                ),
                (
                    insert_account,
                    {
                        "id": u(carer),
                        "role": "caregiver",
                        "login": "+86 137 0000 0001",
                        "d": u(district),
                    },
                ),
                (
                    insert_account,
                    {"id": u(provider), "role": "provider", "login": "prov.a", "d": u(district)},
                ),
                (
                    insert_account,
                    {"id": u(operator), "role": "operator", "login": "op.a", "d": u(district)},
                ),
                (
                    "INSERT INTO senior (id, district_id, name, phone, address, neighbourhood, "
                    "lat, lon, languages, gender_strict, care_notes, emergency_contacts, "
                    "created_at) VALUES (:id, :d, 'S', '13900000001', 'a', 'n', 34.2, 108.9, "
                    "'[]', false, '', :c, CURRENT_TIMESTAMP)",
                    {"id": u(senior), "d": u(district), "c": contacts},
                ),
                (
                    "INSERT INTO provider (id, district_id, name, api_key_hash, api_key_prefix, "
                    "auto_accept, created_at) VALUES (:id, :d, 'P', 'h', 'dsk_', false, "
                    "CURRENT_TIMESTAMP)",
                    {"id": u(provider), "d": u(district)},
                ),
                (
                    "INSERT INTO caregiver (id, provider_id, name, phone, gender, languages, "
                    "service_radius_m, daily_visit_cap, on_duty, rating_sum, rating_count, "
                    "created_at) VALUES (:id, :p, 'C', '+86 137 0000 0001', 'female', '[]', "
                    "5000, 8, false, 0, 0, CURRENT_TIMESTAMP)",
                    {"id": u(carer), "p": u(provider)},
                ),
            ],
        )
    )
    _alembic(url, "0007", monkeypatch)
    logins, seniors, carers = asyncio.run(
        _run(
            url,
            [
                ("SELECT login FROM account ORDER BY login", {}),
                ("SELECT phone, emergency_contacts FROM senior", {}),
                ("SELECT phone FROM caregiver", {}),
            ],
        )
    )
    assert [r[0] for r in logins] == ["+8613700000001", "+8613900000001", "op.a", "prov.a"]
    assert seniors[0][0] == "+8613900000001"
    assert "+8613900009999" in str(seniors[0][1])
    assert carers[0][0] == "+8613700000001"
