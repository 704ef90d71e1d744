"""Sessions that can end: a password change, a disabled account or an expired token stops the
old access token on REST at once, and an open event stream within ``stream_recheck_s``."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import RefreshToken, Role
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
    issued = datetime.now(UTC) - ttl + timedelta(seconds=4)  # expires 4 s from now
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


async def pair(client: AsyncClient, world: World) -> dict[str, str]:
    r = await login(client, world.senior.login, PASSWORD)
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    assert body["refresh_token"]
    return body


def bearer(body: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


async def test_a_refresh_rotates_the_pair_and_retires_the_old_refresh_token(
    client: AsyncClient, world: World
) -> None:
    first = await pair(client, world)
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/auth/me", headers=bearer(second))).status_code == 200
    # The same log-in goes on: its earlier access token still works until it expires.
    assert (await client.get("/v1/auth/me", headers=bearer(first))).status_code == 200
    r = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_a_reused_refresh_token_revokes_the_whole_log_in(
    client: AsyncClient, world: World
) -> None:
    first = await pair(client, world)
    other = await pair(client, world)  # another phone of the same person
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    second = r.json()
    # A thief replays the first refresh token: the family ends, the thief gets nothing.
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    r = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    assert_problem(await client.get("/v1/auth/me", headers=bearer(second)), 401, "token_revoked")
    assert_problem(await client.get("/v1/auth/me", headers=bearer(first)), 401, "token_revoked")
    # The other log-in is untouched.
    assert (await client.get("/v1/auth/me", headers=bearer(other))).status_code == 200
    r = await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_logout_ends_that_log_in_only(client: AsyncClient, world: World) -> None:
    mine = await pair(client, world)
    other = await pair(client, world)
    r = await client.post("/v1/auth/logout", json={"refresh_token": mine["refresh_token"]})
    assert r.status_code == 204
    assert_problem(await client.get("/v1/auth/me", headers=bearer(mine)), 401, "token_revoked")
    r = await client.post("/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    assert (await client.get("/v1/auth/me", headers=bearer(other))).status_code == 200
    r = await client.post("/v1/auth/logout", json={"refresh_token": "unknown"})
    assert r.status_code == 204


async def test_a_password_change_ends_every_refresh_token(
    client: AsyncClient, world: World
) -> None:
    body = await pair(client, world)
    assert (await change(client, bearer(body), PASSWORD)).status_code == 200
    r = await client.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")


@pytest.mark.parametrize("payload", [{}, {"refresh_token": ""}, {"refresh_token": 5}])
async def test_a_bad_refresh_request_is_a_422(
    client: AsyncClient, world: World, payload: dict[str, object]
) -> None:
    for path in ("/v1/auth/refresh", "/v1/auth/logout"):
        assert_problem(await client.post(path, json=payload), 422)


async def test_only_the_hash_of_a_refresh_token_is_stored(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    body = await pair(client, world)
    async with sessionmaker() as session:
        stored = (await session.scalars(select(RefreshToken.token_hash))).all()
    assert body["refresh_token"] not in stored
    assert hashlib.sha256(body["refresh_token"].encode()).hexdigest() in stored


async def test_logout_ends_an_open_stream(live: AsyncClient, world: World) -> None:
    body = await pair(live, world)
    async with subscribe(live, bearer(body)) as stream:
        r = await live.post("/v1/auth/logout", json={"refresh_token": body["refresh_token"]})
        assert r.status_code == 204
        revoked = await stream.until("revoked")
        assert revoked["data"] == {"code": "token_revoked"}
        assert await ended(stream)
