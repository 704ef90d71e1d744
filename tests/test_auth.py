"""Authentication as an attacker would probe it: log-in, bearer tokens, provider API keys, settings.

Every refusal must be a 401 ``application/problem+json`` that says as little as it can: a wrong
password and an unknown login look the same, and a forged, expired or replayed token of a
disabled account never gets past the door.
"""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx import ASGITransport, AsyncClient, Response
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Environment, MissingSecret, Settings
from app.main import create_app
from app.models import Account, Role
from app.security import create_access_token
from tests.factories import PASSWORD, World

# The signing key Doorstep shipped before it had none built in: public, so never to be trusted.
OLD_BUILT_IN_KEY = "doorstep-dev-secret-change-me-in-production-0000"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
_DROP = object()


def assert_problem(r: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: problem+json with type, title, status, detail and a stable code."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["type"].endswith(body["code"])
    if code is not None:
        assert body["code"] == code, body
    if status == 401:
        assert r.headers["www-authenticate"].lower().startswith("bearer"), r.headers
    return body


async def login(client: AsyncClient, username: str, password: str) -> Response:
    return await client.post("/v1/auth/token", data={"username": username, "password": password})


async def deactivate(sessionmaker: async_sessionmaker[AsyncSession], account_id: uuid.UUID) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Account).where(Account.id == account_id).values(is_active=False)
        )


def forge(settings: Settings, account_id: uuid.UUID, role: str = "senior", **claims: Any) -> str:
    """A token like the server's own, with chosen claims changed (``_DROP`` removes one)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "sub": str(account_id),
        "role": role,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
    }
    secret = claims.pop("secret", settings.jwt_signing_key)
    algorithm = claims.pop("algorithm", settings.jwt_algorithm)
    values.update(claims)
    values = {k: v for k, v in values.items() if v is not _DROP}
    return jwt.encode(values, secret, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestLogin:
    @pytest.mark.parametrize(
        ("who", "role"),
        [("senior", "senior"), ("nurse", "caregiver"), ("operator_a", "operator")],
    )
    async def test_each_role_logs_in_with_its_login_and_password(
        self, client: AsyncClient, world: World, settings: Settings, who: str, role: str
    ) -> None:
        person = getattr(world, who)

        r = await login(client, person.login, PASSWORD)

        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "bearer"
        assert body["role"] == role
        assert body["account_id"] == str(person.id)
        assert body["expires_in"] == settings.access_token_ttl_minutes * 60
        me = await client.get("/v1/auth/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200
        assert me.json()["id"] == str(person.id)
        assert me.json()["role"] == role

    async def test_the_issued_token_carries_audience_issuer_and_expiry(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        r = await login(client, world.senior.login, PASSWORD)
        token = r.json()["access_token"]

        header = jwt.get_unverified_header(token)
        claims = jwt.decode(
            token,
            settings.jwt_signing_key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
        assert header["alg"] == settings.jwt_algorithm
        assert claims["sub"] == str(world.senior.id)
        assert claims["exp"] - claims["iat"] == settings.access_token_ttl_minutes * 60

    async def test_wrong_password_and_unknown_login_are_indistinguishable(
        self, client: AsyncClient, world: World
    ) -> None:
        wrong = await login(client, world.senior.login, PASSWORD + "!")
        unknown = await login(client, "13999999999", PASSWORD)

        wrong_body = assert_problem(wrong, 401, "bad_credentials")
        unknown_body = assert_problem(unknown, 401, "bad_credentials")
        assert wrong_body == unknown_body
        assert "access_token" not in wrong.text

    async def test_a_provider_has_no_password_to_log_in_with(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await login(client, "prov.a", PASSWORD)

        assert_problem(r, 401, "bad_credentials")

    async def test_a_deactivated_account_cannot_log_in(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        await deactivate(sessionmaker, world.senior.id)

        r = await login(client, world.senior.login, PASSWORD)

        assert_problem(r, 401)
        assert "access_token" not in r.text
        # Without the right password it is just a wrong password: nothing about the account leaks.
        r = await login(client, world.senior.login, "not the password")
        assert_problem(r, 401, "bad_credentials")

    async def test_missing_form_fields_are_a_validation_problem(self, client: AsyncClient) -> None:
        r = await client.post("/v1/auth/token", data={"username": "13900000001"})

        assert_problem(r, 422, "validation_error")


class TestMe:
    async def test_me_says_who_the_token_belongs_to(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.get("/v1/auth/me", headers=world.operator_a.auth)

        assert r.status_code == 200
        assert r.json() == {
            "id": str(world.operator_a.id),
            "role": "operator",
            "login": "op.a",
            "display_name": "Operator A",
            "district_id": str(world.district_a),
        }

    async def test_me_with_a_provider_key(self, client: AsyncClient, world: World) -> None:
        r = await client.get("/v1/auth/me", headers=world.provider_a_headers)

        assert r.status_code == 200
        assert r.json()["id"] == str(world.provider_a.id)
        assert r.json()["role"] == "provider"

    async def test_anonymous(self, client: AsyncClient) -> None:
        r = await client.get("/v1/auth/me")

        assert_problem(r, 401, "not_authenticated")
        assert r.headers["www-authenticate"] == "Bearer"


class TestBearerToken:
    async def test_the_fixture_token_is_accepted(self, client: AsyncClient, world: World) -> None:
        r = await client.get("/v1/auth/me", headers=world.senior.auth)

        assert r.status_code == 200

    @pytest.mark.parametrize(
        "authorization",
        [
            "Basic MTM5MDAwMDAwMDE6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5",
            "Bearer",
            "Bearer ",
            "Token abc",
        ],
    )
    async def test_no_usable_credentials_is_not_authenticated(
        self, client: AsyncClient, world: World, authorization: str
    ) -> None:
        r = await client.get("/v1/auth/me", headers={"Authorization": authorization})

        assert_problem(r, 401, "not_authenticated")

    @pytest.mark.parametrize(
        "token",
        [
            "garbage",
            "a.b.c",
            "eyJhbGciOiJIUzI1NiJ9.e30.",
            "x" * 4000,
        ],
    )
    async def test_garbage_token(self, client: AsyncClient, world: World, token: str) -> None:
        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "invalid_token")

    async def test_token_signed_with_another_secret(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        token = forge(settings, world.senior.id, secret="not-the-server-secret-" + "x" * 32)

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "invalid_token")

    async def test_a_server_with_its_own_secret_refuses_other_servers_tokens(
        self, world: World, settings: Settings
    ) -> None:
        own = settings.model_copy(update={"jwt_secret": "a-deployment-secret-" + "7" * 32})
        application = create_app(own)
        async with (
            application.router.lifespan_context(application),
            AsyncClient(transport=ASGITransport(app=application), base_url="http://t") as http,
        ):
            # world.senior.token is signed with the key the test settings use.
            assert_problem(await http.get("/v1/auth/me", headers=world.senior.auth), 401)
            r = await http.get("/v1/auth/me", headers=bearer(forge(own, world.senior.id)))
            assert r.status_code == 200, r.text

    async def test_unsigned_token_with_alg_none(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        token = forge(settings, world.operator_a.id, role="operator", secret=None, algorithm="none")
        assert jwt.get_unverified_header(token)["alg"] == "none"
        # Hand-built too, in case a library refused to produce one: header, payload, no signature.
        now = int(datetime.now(UTC).timestamp())
        claims = {
            "sub": str(world.operator_a.id),
            "role": "operator",
            "aud": settings.jwt_audience,
            "iss": settings.jwt_issuer,
            "iat": now,
            "exp": now + 300,
        }
        crafted = [
            f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}."
            for alg in ("none", "None", "NONE")
        ]

        for unsigned in (token, *crafted):
            r = await client.get("/v1/ops/queue", headers=bearer(unsigned))
            assert_problem(r, 401, "invalid_token")

    @pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
    async def test_token_with_another_algorithm_and_the_right_secret(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        token = forge(settings, world.senior.id, algorithm="HS512")

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "invalid_token")

    async def test_expired_token(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        past = datetime.now(UTC) - timedelta(hours=2)
        token = forge(settings, world.senior.id, iat=past, exp=past + timedelta(minutes=60))

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "token_expired")

    async def test_token_for_another_audience(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        token = forge(settings, world.senior.id, aud="some-other-service")

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "invalid_token")

    async def test_token_from_another_issuer(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        token = forge(settings, world.senior.id, iss="someone-else")

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "invalid_token")

    @pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub", "role"])
    async def test_token_missing_a_required_claim(
        self, client: AsyncClient, world: World, settings: Settings, claim: str
    ) -> None:
        token = forge(settings, world.senior.id, **{claim: _DROP})

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "invalid_token")

    @pytest.mark.parametrize(
        ("sub", "role"),
        [("not-a-uuid", "senior"), ("", "senior"), (None, "root")],
    )
    async def test_token_with_malformed_claims(
        self,
        client: AsyncClient,
        world: World,
        settings: Settings,
        sub: str | None,
        role: str,
    ) -> None:
        token = forge(settings, world.senior.id, role=role, **({} if sub is None else {"sub": sub}))

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401, "invalid_token")

    async def test_a_role_claim_cannot_raise_the_account_s_role(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        token = forge(settings, world.senior.id, role="operator")

        r = await client.get("/v1/ops/queue", headers=bearer(token))

        assert_problem(r, 401)
        r = await client.get(
            "/v1/admin/districts", headers=bearer(forge(settings, world.senior.id, role="admin"))
        )
        assert_problem(r, 401)

    async def test_a_tampered_payload_breaks_the_signature(
        self, client: AsyncClient, world: World
    ) -> None:
        header, _payload, signature = world.senior.token.split(".")
        claims = jwt.decode(world.senior.token, options={"verify_signature": False})
        claims["sub"] = str(world.operator_a.id)
        claims["role"] = "operator"
        tampered = f"{header}.{_b64(claims)}.{signature}"

        r = await client.get("/v1/ops/queue", headers=bearer(tampered))

        assert_problem(r, 401, "invalid_token")

    async def test_token_for_an_account_that_does_not_exist(
        self, client: AsyncClient, world: World, settings: Settings
    ) -> None:
        token = forge(settings, uuid.uuid4())

        r = await client.get("/v1/auth/me", headers=bearer(token))

        assert_problem(r, 401)

    async def test_a_valid_token_of_a_deactivated_account_stops_working(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        issued = (await login(client, world.senior.login, PASSWORD)).json()["access_token"]
        assert (await client.get("/v1/auth/me", headers=bearer(issued))).status_code == 200

        await deactivate(sessionmaker, world.senior.id)

        for token in (issued, world.senior.token):
            assert_problem(await client.get("/v1/auth/me", headers=bearer(token)), 401)
            r = await client.post(
                "/v1/orders", json={"service_code": "meal_delivery"}, headers=bearer(token)
            )
            assert_problem(r, 401)
            assert_problem(await client.get("/v1/seniors/me", headers=bearer(token)), 401)

    async def test_a_deactivated_operator_loses_the_district(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        await deactivate(sessionmaker, world.operator_a.id)

        r = await client.get(f"/v1/ops/seniors/{world.senior.id}", headers=world.operator_a.auth)

        assert_problem(r, 401)


class TestKeyRotation:
    """DOORSTEP_JWT_PREVIOUS_SECRETS: tokens signed with a previous key still verify; new ones
    are signed with the current key; any other key is a 401."""

    @staticmethod
    @asynccontextmanager
    async def serving(settings: Settings) -> AsyncIterator[AsyncClient]:
        application = create_app(settings)
        async with (
            application.router.lifespan_context(application),
            AsyncClient(transport=ASGITransport(app=application), base_url="http://t") as http,
        ):
            yield http

    @staticmethod
    def rotated(settings: Settings) -> Settings:
        """The test settings after a rotation: a new key, the suite's key moved to previous."""
        return settings.model_copy(
            update={
                "jwt_secret": "the-new-key-after-rotation-" + "n" * 32,
                "jwt_previous_secrets": [settings.jwt_signing_key],
            }
        )

    async def test_a_token_signed_with_a_previous_key_is_still_accepted(
        self, world: World, settings: Settings
    ) -> None:
        async with self.serving(self.rotated(settings)) as http:
            # world.senior.token was issued before the rotation.
            r = await http.get("/v1/auth/me", headers=world.senior.auth)
            assert r.status_code == 200, r.text
            assert r.json()["id"] == str(world.senior.id)
            r = await http.get("/v1/ops/queue", headers=world.operator_a.auth)
            assert r.status_code == 200, r.text

    async def test_new_tokens_are_signed_with_the_current_key(
        self, world: World, settings: Settings
    ) -> None:
        rotated = self.rotated(settings)
        async with self.serving(rotated) as http:
            r = await login(http, world.senior.login, PASSWORD)
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            assert (await http.get("/v1/auth/me", headers=bearer(token))).status_code == 200
        options = {"audience": settings.jwt_audience, "issuer": settings.jwt_issuer}
        claims = jwt.decode(token, rotated.jwt_signing_key, algorithms=["HS256"], **options)
        assert claims["sub"] == str(world.senior.id)
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, settings.jwt_signing_key, algorithms=["HS256"], **options)

    async def test_once_the_previous_key_is_removed_its_tokens_are_refused(
        self, world: World, settings: Settings
    ) -> None:
        done = self.rotated(settings).model_copy(update={"jwt_previous_secrets": []})
        async with self.serving(done) as http:
            r = await http.get("/v1/auth/me", headers=world.senior.auth)
            assert_problem(r, 401, "invalid_token")

    @pytest.mark.parametrize(
        "key", [OLD_BUILT_IN_KEY, "any-other-key-of-enough-length-" + "z" * 16]
    )
    async def test_a_token_signed_with_any_other_key_is_refused(
        self, world: World, settings: Settings, key: str
    ) -> None:
        async with self.serving(self.rotated(settings)) as http:
            for who, role, path in (
                (world.senior.id, "senior", "/v1/auth/me"),
                (world.admin.id, "admin", "/v1/admin/districts"),
            ):
                token = forge(settings, who, role=role, secret=key)
                assert_problem(await http.get(path, headers=bearer(token)), 401, "invalid_token")

    async def test_an_expired_token_of_a_previous_key_says_it_expired(
        self, world: World, settings: Settings
    ) -> None:
        past = datetime.now(UTC) - timedelta(hours=2)
        token = forge(settings, world.senior.id, iat=past, exp=past + timedelta(minutes=60))
        async with self.serving(self.rotated(settings)) as http:
            r = await http.get("/v1/auth/me", headers=bearer(token))
            assert_problem(r, 401, "token_expired")


class TestProviderApiKey:
    async def test_a_valid_key_lists_only_the_provider_s_own_caregivers(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.get("/v1/provider/caregivers", headers=world.provider_a_headers)

        assert r.status_code == 200, r.text
        ids = {c["id"] for c in r.json()["items"]}
        assert ids == {str(world.nurse.id), str(world.helper.id)}
        assert all(c["provider_id"] == str(world.provider_a.id) for c in r.json()["items"])

        r = await client.get("/v1/provider/caregivers", headers={"X-API-Key": world.provider_b_key})
        assert {c["id"] for c in r.json()["items"]} == {str(world.other_caregiver.id)}

    @pytest.mark.parametrize(
        "key",
        ["dsk_not-a-real-key", "garbage", "x" * 300],
    )
    async def test_an_invalid_key(self, client: AsyncClient, world: World, key: str) -> None:
        r = await client.get("/v1/provider/caregivers", headers={"X-API-Key": key})

        assert_problem(r, 401, "invalid_api_key")

    async def test_a_near_miss_of_a_real_key(self, client: AsyncClient, world: World) -> None:
        key = world.provider_a_key
        for near in (key[:-1], key + "x", key.upper(), f" {key}x"):
            r = await client.get("/v1/provider/caregivers", headers={"X-API-Key": near})
            assert_problem(r, 401, "invalid_api_key")

    async def test_an_invalid_key_is_not_rescued_by_a_bearer_token(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.get(
            "/v1/provider/caregivers",
            headers={"X-API-Key": "dsk_wrong", **world.operator_a.auth},
        )

        assert_problem(r, 401, "invalid_api_key")

    async def test_no_key(self, client: AsyncClient) -> None:
        r = await client.get("/v1/provider/caregivers")

        assert_problem(r, 401, "not_authenticated")

    async def test_the_key_of_a_deactivated_provider(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        await deactivate(sessionmaker, world.provider_a.id)

        r = await client.get("/v1/provider/caregivers", headers=world.provider_a_headers)

        assert_problem(r, 401, "invalid_api_key")

    async def test_a_key_grants_nothing_outside_the_provider_role(
        self, client: AsyncClient, world: World
    ) -> None:
        for method, path in (
            ("GET", "/v1/orders"),
            ("GET", "/v1/ops/queue"),
            ("GET", "/v1/visits"),
            ("GET", "/v1/admin/districts"),
        ):
            r = await client.request(method, path, headers=world.provider_a_headers)
            assert_problem(r, 403, "wrong_role")


class TestSettings:
    @pytest.fixture(autouse=True)
    def _no_ambient_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("DOORSTEP_JWT_SECRET", "DOORSTEP_JWT_PREVIOUS_SECRETS", "DOORSTEP_ENV"):
            monkeypatch.delenv(name, raising=False)

    def test_production_behaviour_is_the_default(self) -> None:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        assert settings.env is Environment.prod
        assert settings.secure_cookies
        assert not settings.demo

    @pytest.mark.parametrize("env", ["dev", "test", "prod"])
    def test_no_env_has_a_built_in_key_and_the_api_refuses_to_start_without_one(
        self, env: str
    ) -> None:
        settings = Settings(env=env, _env_file=None)  # type: ignore[call-arg]

        assert settings.jwt_secret is None
        with pytest.raises(MissingSecret, match="DOORSTEP_JWT_SECRET is not set") as refused:
            create_app(settings)
        assert "doorstep init-secrets" in str(refused.value)
        with pytest.raises(MissingSecret):
            create_access_token(settings, account_id=uuid.uuid4(), role=Role.senior)

    @pytest.mark.parametrize("env", ["dev", "test", "prod"])
    def test_a_short_key_is_refused_in_every_env(self, env: str) -> None:
        with pytest.raises(ValidationError, match="at least 32 characters"):
            Settings(env=env, jwt_secret="x" * 31, _env_file=None)  # type: ignore[call-arg]
        with pytest.raises(ValidationError, match="DOORSTEP_JWT_PREVIOUS_SECRETS"):
            Settings(  # type: ignore[call-arg]
                env=env, jwt_secret="x" * 32, jwt_previous_secrets=["short"], _env_file=None
            )

    def test_the_key_older_versions_shipped_is_refused_even_on_purpose(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with pytest.raises(ValidationError, match="published key"):
            Settings(jwt_secret=OLD_BUILT_IN_KEY, _env_file=None)  # type: ignore[call-arg]
        monkeypatch.setenv("DOORSTEP_JWT_SECRET", "a-deployment-secret-" + "5" * 32)
        monkeypatch.setenv("DOORSTEP_JWT_PREVIOUS_SECRETS", OLD_BUILT_IN_KEY)
        with pytest.raises(ValidationError, match="published key"):
            Settings(_env_file=None)  # type: ignore[call-arg]

    def test_a_real_key_and_previous_keys_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        current, old, older = ("c" * 40, "o" * 32, "p" * 64)
        monkeypatch.setenv("DOORSTEP_JWT_SECRET", current)
        monkeypatch.setenv("DOORSTEP_JWT_PREVIOUS_SECRETS", f" {old},{older} ,")

        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        assert settings.jwt_signing_key == current
        assert settings.jwt_previous_secrets == [old, older]
        assert settings.jwt_verification_keys == [current, old, older]
