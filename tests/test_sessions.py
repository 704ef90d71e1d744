"""The pages' cookie session: what a browser can and cannot do with it.

A cookie rides along on every request a browser makes, to any site's form or script: so the
cookie is HttpOnly and SameSite, every state change needs the page's CSRF token and no foreign
Origin, a session slides while used and ends on log-out, and bearer tokens keep working as
before. CORS stays closed unless origins are named.
"""

from datetime import UTC, datetime, timedelta

import pytest
from httpx import ASGITransport, AsyncClient

from app.config import Settings
from app.main import create_app
from app.services.sessions import COOKIE_NAME
from tests.factories import PASSWORD, World, at
from tests.test_auth import assert_problem


async def log_in(client: AsyncClient, login: str) -> str:
    """Open a cookie session as a page does; returns its CSRF token."""
    r = await client.post("/v1/auth/session", json={"login": login, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return str(r.json()["csrf_token"])


async def test_log_in_sets_an_httponly_samesite_cookie(client: AsyncClient, world: World) -> None:
    r = await client.post("/v1/auth/session", json={"login": " 13900000001 ", "password": PASSWORD})

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role"] == "senior"
    assert body["display_name"] == "Senior 0001"
    assert len(body["csrf_token"]) == 64
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # env=test is plain-HTTP local development
    assert "Max-Age=15552000" in cookie  # 180 days: the server decides when it is idle
    assert r.headers["cache-control"] == "no-store"
    # The cookie now authenticates reads without any header.
    r = await client.get("/v1/auth/me")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(world.senior.id)


async def test_wrong_password_opens_no_session(client: AsyncClient, world: World) -> None:
    r = await client.post("/v1/auth/session", json={"login": "13900000001", "password": "nope"})
    assert_problem(r, 401, "bad_credentials")
    assert "set-cookie" not in r.headers
    assert_problem(await client.get("/v1/auth/me"), 401, "not_authenticated")


async def test_changes_need_the_csrf_token(client: AsyncClient, world: World) -> None:
    csrf = await log_in(client, "13900000001")
    order = {"service_code": "meal_delivery"}

    assert_problem(await client.post("/v1/orders", json=order), 403, "csrf_failed")
    r = await client.post("/v1/orders", json=order, headers={"X-CSRF-Token": "0" * 64})
    assert_problem(r, 403, "csrf_failed")
    # Nothing was placed by the refused attempts.
    assert (await client.get("/v1/orders")).json()["items"] == []

    r = await client.post("/v1/orders", json=order, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text


async def test_a_foreign_origin_is_refused_even_with_the_token(
    client: AsyncClient, world: World
) -> None:
    csrf = await log_in(client, "13900000001")
    headers = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    r = await client.post("/v1/orders", json={"service_code": "meal_delivery"}, headers=headers)
    assert_problem(r, 403, "csrf_failed")
    same = {"X-CSRF-Token": csrf, "Origin": "http://doorstep.test"}
    r = await client.post("/v1/orders", json={"service_code": "meal_delivery"}, headers=same)
    assert r.status_code == 201, r.text


async def test_a_browser_saying_cross_site_is_refused_even_with_the_token(
    client: AsyncClient, world: World
) -> None:
    csrf = await log_in(client, "13900000001")
    for site in ("cross-site", "same-site"):
        headers = {"X-CSRF-Token": csrf, "Sec-Fetch-Site": site}
        r = await client.post("/v1/orders", json={"service_code": "meal_delivery"}, headers=headers)
        assert_problem(r, 403, "csrf_failed")
    headers = {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"}
    r = await client.post("/v1/orders", json={"service_code": "meal_delivery"}, headers=headers)
    assert r.status_code == 201, r.text


async def test_an_ended_session_is_a_401_not_a_csrf_refusal(
    client: AsyncClient, world: World
) -> None:
    csrf = await log_in(client, "13900000001")
    await client.delete("/v1/auth/session", headers={"X-CSRF-Token": csrf})
    client.cookies.set(COOKIE_NAME, "gone")
    r = await client.post(
        "/v1/orders", json={"service_code": "meal_delivery"}, headers={"X-CSRF-Token": csrf}
    )
    assert_problem(r, 401, "session_expired")


async def test_logging_in_again_ends_the_browsers_earlier_session(
    client: AsyncClient, world: World
) -> None:
    await log_in(client, "13900000001")
    first = client.cookies[COOKIE_NAME]
    await log_in(client, "13900000002")
    client.cookies.set(COOKIE_NAME, first)
    assert_problem(await client.get("/v1/auth/me"), 401, "session_expired")


async def test_an_unknown_login_costs_a_password_hash_too(
    client: AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise the time of the answer tells a stranger which phone numbers are registered."""
    from app.services import sessions

    hashed: list[str | None] = []
    verify = sessions.verify_password

    async def counting(password: str, password_hash: str | None) -> bool:
        hashed.append(password_hash)
        return await verify(password, password_hash)

    monkeypatch.setattr(sessions, "verify_password", counting)
    r = await client.post("/v1/auth/session", json={"login": "13911112222", "password": "x"})
    assert_problem(r, 401, "bad_credentials")
    assert hashed == [None]  # the dummy hash was verified


async def test_the_log_in_form_refuses_other_sites_and_foreign_redirects(
    client: AsyncClient, world: World
) -> None:
    form = {"login": "13900000001", "password": PASSWORD, "next": "/app"}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        r = await client.post("/login", data=form, headers=headers)
        assert r.status_code == 403, headers
        assert COOKIE_NAME not in client.cookies
    for target in ("//app", "//evil.example/app", "https://evil.example", "/app/../ops"):
        r = await client.post("/login", data={**form, "next": target})
        assert r.status_code == 303
        assert r.headers["location"] == "/", target
        r = await client.get("/lang/en", params={"next": target})
        assert r.headers["location"] == "/", target
    r = await client.post("/login", data=form, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303
    assert r.headers["location"] == "/app"
    assert (await client.get("/v1/auth/me")).status_code == 200


async def test_the_log_out_form_ends_the_session_from_our_page_only(
    client: AsyncClient, world: World
) -> None:
    await log_in(client, "13900000001")
    token = client.cookies[COOKIE_NAME]
    r = await client.post(
        "/logout", data={"next": "/app"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    assert (await client.get("/v1/auth/me")).status_code == 200

    r = await client.post(
        "/logout", data={"next": "/app"}, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/app"
    client.cookies.set(COOKIE_NAME, token)
    assert_problem(await client.get("/v1/auth/me"), 401, "session_expired")


async def test_bearer_tokens_need_no_csrf(client: AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/orders", json={"service_code": "meal_delivery"}, headers=world.senior.auth
    )
    assert r.status_code == 201, r.text


async def test_refresh_rotates_the_cookie_and_the_old_one_stops(
    client: AsyncClient, world: World
) -> None:
    csrf = await log_in(client, "13700000001")
    old = client.cookies[COOKIE_NAME]

    r = await client.post("/v1/auth/session/refresh", headers={"X-CSRF-Token": csrf})

    assert r.status_code == 200, r.text
    new = client.cookies[COOKIE_NAME]
    assert new != old
    # The CSRF token belongs to the session, not to the cookie: another tab of the same
    # session, still holding the page's token, keeps working after a refresh.
    assert r.json()["csrf_token"] == csrf
    r = await client.put(
        "/v1/caregivers/me/duty", json={"on_duty": True}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 200, r.text
    client.cookies.set(COOKIE_NAME, old)
    assert_problem(await client.get("/v1/auth/me"), 401, "session_expired")
    # A second refresh racing with the same old token is refused, not handed a dead cookie.
    r = await client.post("/v1/auth/session/refresh", headers={"X-CSRF-Token": csrf})
    assert_problem(r, 401, "session_expired")


async def test_log_out_ends_the_session_everywhere(client: AsyncClient, world: World) -> None:
    csrf = await log_in(client, "op.a")
    token = client.cookies[COOKIE_NAME]

    r = await client.delete("/v1/auth/session", headers={"X-CSRF-Token": csrf})

    assert r.status_code == 204, r.text
    assert COOKIE_NAME not in client.cookies
    client.cookies.set(COOKIE_NAME, token)  # a copy kept elsewhere is dead too
    assert_problem(await client.get("/v1/ops/queue"), 401, "session_expired")


async def test_a_session_slides_with_use_and_ends_when_idle(
    client: AsyncClient, world: World, settings: Settings
) -> None:
    start = datetime.now(UTC)
    at(client, start)
    await log_in(client, "13900000001")
    idle = timedelta(days=settings.web_session_idle_days)

    # Used every few weeks, it lives on past its first idle expiry ...
    for weeks in (3, 6, 9):
        at(client, start + timedelta(weeks=weeks))
        assert (await client.get("/v1/auth/me")).status_code == 200, weeks
    # ... but not after a whole idle period without use.
    at(client, start + timedelta(weeks=9) + idle + timedelta(minutes=1))
    assert_problem(await client.get("/v1/auth/me"), 401, "session_expired")


async def test_a_session_never_outlives_its_hard_limit(
    client: AsyncClient, world: World, settings: Settings
) -> None:
    start = datetime.now(UTC)
    at(client, start)
    await log_in(client, "13900000001")
    step = timedelta(days=settings.web_session_idle_days - 1)
    moment = start
    while moment + step < start + timedelta(days=settings.web_session_max_days):
        moment += step
        at(client, moment)
        assert (await client.get("/v1/auth/me")).status_code == 200
    at(client, start + timedelta(days=settings.web_session_max_days, minutes=1))
    assert_problem(await client.get("/v1/auth/me"), 401, "session_expired")


async def test_a_disabled_account_loses_its_session(
    client: AsyncClient, world: World, sessionmaker: object
) -> None:
    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from app.models import Account

    await log_in(client, "13900000001")
    assert isinstance(sessionmaker, async_sessionmaker)
    factory: async_sessionmaker[AsyncSession] = sessionmaker
    async with factory() as session, session.begin():
        await session.execute(
            update(Account).where(Account.id == world.senior.id).values(is_active=False)
        )
    assert_problem(await client.get("/v1/auth/me"), 401, "session_expired")


async def test_cors_is_closed_by_default(client: AsyncClient, world: World) -> None:
    preflight = {
        "Origin": "https://family-app.example",
        "Access-Control-Request-Method": "POST",
    }
    r = await client.options("/v1/orders", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = await client.get("/v1/catalogue", headers={"Origin": "https://family-app.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_cors_admits_the_named_origins_only(settings: Settings, clean: None) -> None:
    named = settings.model_copy(update={"cors_origins": ["https://family-app.example"]})
    application = create_app(named)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(
            transport=ASGITransport(app=application), base_url="http://doorstep.test"
        ) as http,
    ):
        preflight = {
            "Origin": "https://family-app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        r = await http.options("/v1/orders", headers=preflight)
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == "https://family-app.example"
        assert "access-control-allow-credentials" not in r.headers  # bearer tokens, not cookies
        r = await http.options(
            "/v1/orders", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers
