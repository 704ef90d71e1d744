"""Sessions that can end: a password change, a disabled account or an expired token stops the
old access token on REST at once, and an open event stream within ``stream_recheck_s``."""

from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import Role
from app.security import create_access_token
from app.services.sessions import COOKIE_NAME
from tests.factories import PASSWORD, World
from tests.test_auth import assert_problem, deactivate, login
from tests.test_events import live, subscribe

__all__ = ["live"]  # the live server fixture, with a short stream_recheck_s

NEW = "a-new-long-passphrase"


async def change(client: AsyncClient, headers: dict[str, str], current: str, new: str = NEW):  # type: ignore[no-untyped-def]
    return await client.post(
        "/v1/auth/password",
        json={"current_password": current, "new_password": new},
        headers=headers,
    )


async def test_a_password_change_revokes_the_old_token_and_returns_a_new_one(
    client: AsyncClient, world: World
) -> None:
    old = world.senior.auth
    r = await change(client, old, PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["role"] == "senior"
    assert body["account_id"] == str(world.senior.id)
    new = {"Authorization": f"Bearer {body['access_token']}"}
    assert_problem(await client.get("/v1/auth/me", headers=old), 401, "token_revoked")
    assert (await client.get("/v1/auth/me", headers=new)).status_code == 200
    assert_problem(await login(client, world.senior.login, PASSWORD), 401, "bad_credentials")
    assert (await login(client, world.senior.login, NEW)).status_code == 200
    # Other accounts' tokens are untouched.
    assert (await client.get("/v1/auth/me", headers=world.neighbour.auth)).status_code == 200


async def test_a_wrong_current_password_gets_the_log_in_answer_and_changes_nothing(
    client: AsyncClient, world: World
) -> None:
    r = await change(client, world.senior.auth, "not-my-password")
    body = assert_problem(r, 401, "bad_credentials")
    assert "token" not in body
    assert (await client.get("/v1/auth/me", headers=world.senior.auth)).status_code == 200
    assert (await login(client, world.senior.login, PASSWORD)).status_code == 200
    assert_problem(await login(client, world.senior.login, NEW), 401, "bad_credentials")


@pytest.mark.parametrize(
    "payload",
    [
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD},
        {"current_password": "", "new_password": NEW},
        {"current_password": PASSWORD, "new_password": 12345678},
        {"current_password": PASSWORD, "new_password": NEW, "extra": 1},
    ],
)
async def test_a_bad_password_change_is_a_422_and_changes_nothing(
    client: AsyncClient, world: World, payload: dict[str, object]
) -> None:
    r = await client.post("/v1/auth/password", json=payload, headers=world.senior.auth)
    assert_problem(r, 422)
    assert (await client.get("/v1/auth/me", headers=world.senior.auth)).status_code == 200


async def test_a_password_change_needs_a_login(client: AsyncClient, world: World) -> None:
    r = await change(client, {}, PASSWORD)
    assert_problem(r, 401, "not_authenticated")


async def test_a_password_change_ends_the_account_s_other_cookie_sessions(
    client: AsyncClient, world: World
) -> None:
    r = await client.post(
        "/v1/auth/session", json={"login": world.senior.login, "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    page = {"Cookie": f"{COOKIE_NAME}={r.cookies[COOKIE_NAME]}"}
    client.cookies.clear()
    assert (await client.get("/v1/auth/me", headers=page)).status_code == 200
    assert (await change(client, world.senior.auth, PASSWORD)).status_code == 200
    assert_problem(await client.get("/v1/auth/me", headers=page), 401, "session_expired")


async def test_a_page_that_changes_its_password_stays_logged_in(
    client: AsyncClient, world: World
) -> None:
    r = await client.post(
        "/v1/auth/session", json={"login": world.senior.login, "password": PASSWORD}
    )
    csrf = r.json()["csrf_token"]
    r = await change(client, {"X-CSRF-Token": csrf}, PASSWORD)
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/auth/me")).status_code == 200  # the same cookie
    assert_problem(await client.get("/v1/auth/me", headers=world.senior.auth), 401, "token_revoked")


async def test_a_disabled_account_s_token_is_revoked(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await deactivate(sessionmaker, world.senior.id)
    r = await client.get("/v1/auth/me", headers=world.senior.auth)
    assert_problem(r, 401, "token_revoked")


async def test_a_token_with_a_forged_version_is_refused(
    client: AsyncClient, world: World, settings: Settings
) -> None:
    token, _ = create_access_token(
        settings, account_id=world.senior.id, role=Role.senior, version=7
    )
    r = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401, "token_revoked")


async def ended(stream) -> bool:  # type: ignore[no-untyped-def]
    """Whether the stream has nothing more after its last event (the server closed it)."""
    try:
        await stream.next(wait=5)
    except EOFError:
        return True
    return False


async def test_an_open_stream_ends_after_a_password_change(live: AsyncClient, world: World) -> None:
    async with subscribe(live, world.senior.auth) as stream:
        r = await change(live, world.neighbour.auth, PASSWORD)  # someone else's: no effect
        assert r.status_code == 200, r.text
        r = await change(live, world.senior.auth, PASSWORD)
        assert r.status_code == 200, r.text
        revoked = await stream.until("revoked")
        assert revoked["data"] == {"code": "token_revoked"}
        assert "id" not in revoked  # the client resumes from its last real event
        assert await ended(stream)


async def test_an_open_stream_ends_when_the_account_is_disabled(
    live: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with (
        subscribe(live, world.nurse.auth) as stream,
        subscribe(live, world.senior.auth) as other,
    ):
        await deactivate(sessionmaker, world.nurse.id)
        revoked = await stream.until("revoked")
        assert revoked["data"] == {"code": "token_revoked"}
        assert await ended(stream)
        # Another account's stream goes on.
        r = await live.post(
            "/v1/orders", json={"service_code": "meal_delivery"}, headers=world.senior.auth
        )
        assert r.status_code == 201, r.text
        assert (await other.until("order.placed"))["data"]["order_id"] == r.json()["id"]


async def test_an_open_stream_ends_when_its_token_expires(
    live: AsyncClient, world: World, settings: Settings
) -> None:
    ttl = timedelta(minutes=settings.access_token_ttl_minutes)
    issued = datetime.now(UTC) - ttl + timedelta(seconds=1)
    token, _ = create_access_token(
        settings, account_id=world.senior.id, role=Role.senior, now=issued
    )
    async with subscribe(live, {"Authorization": f"Bearer {token}"}) as stream:
        revoked = await stream.until("revoked")
        assert revoked["data"] == {"code": "token_expired"}
        assert await ended(stream)


async def test_an_open_page_stream_ends_when_its_session_ends(
    live: AsyncClient, world: World
) -> None:
    r = await live.post(
        "/v1/auth/session", json={"login": world.senior.login, "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    cookie = {"Cookie": f"{COOKIE_NAME}={r.cookies[COOKIE_NAME]}"}
    live.cookies.clear()
    async with subscribe(live, cookie) as stream:
        assert (await change(live, world.senior.auth, PASSWORD)).status_code == 200
        revoked = await stream.until("revoked")
        assert revoked["data"] == {"code": "session_expired"}
        assert await ended(stream)
