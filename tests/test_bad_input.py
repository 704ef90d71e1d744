"""A stranger attacks the API with bad input, through HTTP only.

The rule users depend on: bad input gets a clear 4xx in the one documented shape
(``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``, ``code``) and loses
nothing that was already saved. Never a 500 for a client's mistake.

Every refused write is checked against a snapshot of the database taken just before it: row counts
of every table and the mutable state of orders, visits, caregivers and idempotency keys.
"""

import base64
import importlib
import json
import pkgutil
import re
import typing
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from pydantic import BaseModel, Strict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_sessionmaker
from app.deps import cursor_secret
from app.models import (
    Account,
    AuditLog,
    Caregiver,
    CaregiverPreference,
    CaregiverSkill,
    District,
    IdempotencyKey,
    Order,
    OrderStatusHistory,
    OutboxEvent,
    Provider,
    Role,
    Senior,
    Shift,
    Visit,
)
from app.schemas.common import Input
from app.security import create_access_token
from app.services.paging import PageParams
from tests.conftest import serving, wipe
from tests.factories import FAR, HOME, NEAR_HOME, PASSWORD, World, build_world, ready

PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
TABLES = (
    Account,
    District,
    Senior,
    CaregiverPreference,
    Provider,
    Caregiver,
    CaregiverSkill,
    Shift,
    Order,
    OrderStatusHistory,
    OutboxEvent,
    Visit,
    IdempotencyKey,
    AuditLog,
)
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
TWO_MB = 2 * 1024 * 1024

Sessionmaker = async_sessionmaker[AsyncSession]


# --------------------------------------------------------------------------------------------
# Helpers: the problem shape, and "nothing changed"
# --------------------------------------------------------------------------------------------


def assert_problem(
    r: Response, status: int, code: str | None = None, mentions: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``r`` is a problem+json response with ``status`` (and ``code``) whose detail names ``mentions``."""
    where = f"{r.request.method} {r.request.url.path}"
    assert r.status_code == status, (
        f"{where}: expected {status}, got {r.status_code}: {r.text[:600]}"
    )
    assert r.headers.get("content-type") == PROBLEM, (
        f"{where}: content-type {r.headers.get('content-type')!r}: {r.text[:300]}"
    )
    body = r.json()
    assert isinstance(body, dict), body
    assert body.keys() >= PROBLEM_KEYS, f"{where}: missing {PROBLEM_KEYS - body.keys()}: {body}"
    assert body["status"] == status == r.status_code, body
    assert isinstance(body["type"], str), body
    assert body["type"].startswith("https://"), body
    assert body["title"] == HTTPStatus(status).phrase, body
    assert isinstance(body["detail"], str), body
    assert body["detail"].strip(), body
    assert isinstance(body["code"], str), body
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["code"]), body
    if code is not None:
        assert body["code"] == code, f"{where}: code {body['code']!r} != {code!r}: {body}"
    for word in mentions:
        assert word.lower() in body["detail"].lower(), (
            f"{where}: detail does not mention {word!r}: {body['detail']!r}"
        )
    if status == 401:
        assert r.headers.get("www-authenticate") == "Bearer", r.headers
    if status == 405:
        assert r.headers.get("allow"), r.headers
    return body  # type: ignore[no-any-return]


async def snapshot(sessionmaker: Sessionmaker) -> dict[str, Any]:
    """Everything a refused request must leave alone."""
    async with sessionmaker() as s:
        counts = {
            model.__tablename__: await s.scalar(select(func.count()).select_from(model))
            for model in TABLES
        }
        orders = {
            o.id: (o.status, o.caregiver_id, o.rating, o.cancel_reason, o.updated_at, o.notes)
            for o in await s.scalars(select(Order))
        }
        visits = {
            v.id: (v.status, v.caregiver_id, v.checked_in_at, v.checked_out_at, v.ends_at)
            for v in await s.scalars(select(Visit))
        }
        caregivers = {
            c.id: (c.on_duty, c.lat, c.lon, c.position_at, c.rating_sum, c.rating_count)
            for c in await s.scalars(select(Caregiver))
        }
        keys = {
            (k.account_id, k.key): (k.request_hash, k.response_status)
            for k in await s.scalars(select(IdempotencyKey))
        }
        shifts = {(x.caregiver_id, x.starts_at, x.ends_at) for x in await s.scalars(select(Shift))}
    return {
        "counts": counts,
        "orders": orders,
        "visits": visits,
        "caregivers": caregivers,
        "idempotency_keys": keys,
        "shifts": shifts,
    }


async def refused(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    method: str,
    url: str,
    *,
    status: int,
    code: str | None = None,
    mentions: tuple[str, ...] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """Send one bad request: a problem comes back and the database is exactly as it was."""
    before = await snapshot(sessionmaker)
    r = await http.request(method, url, **kwargs)
    changed = await snapshot(sessionmaker) != before
    try:
        body = assert_problem(r, status, code, mentions)
    except AssertionError as exc:
        state = "CHANGED" if changed else "unchanged"
        raise AssertionError(f"{exc}\n(the database is {state})") from None
    assert not changed, f"{method} {url} was refused ({r.status_code}) but changed the database"
    return body


async def count(sessionmaker: Sessionmaker, model: type[Any]) -> int:
    async with sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


def at(dt: datetime) -> str:
    return dt.isoformat()


def set_path(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the value at ``path`` replaced (or removed, for ``DROP``)."""
    body = json.loads(json.dumps(body))
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    if value is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


DROP = object()


# --------------------------------------------------------------------------------------------
# Fixtures: a client that shows 500s as responses, and a scene with orders in every state
# --------------------------------------------------------------------------------------------


@dataclass
class Scene:
    world: World
    pending: str  # the senior's pending cleaning order
    assigned: str  # the senior's companionship order, assigned to the nurse
    visit: str  # the nurse's (assigned, not started) visit for ``assigned``
    completed: str  # the senior's meal delivery, completed by the helper
    completed_visit: str
    cancelled: str  # the senior's cancelled order
    neighbours: str  # the neighbour's pending order (not the senior's)

    def ids(self) -> dict[str, str]:
        return {
            "pending": self.pending,
            "assigned": self.assigned,
            "visit": self.visit,
            "completed": self.completed,
            "completed_visit": self.completed_visit,
            "cancelled": self.cancelled,
            "neighbours": self.neighbours,
            "nurse": str(self.world.nurse.id),
            "helper": str(self.world.helper.id),
            "senior": str(self.world.senior.id),
            "district_b": str(self.world.district_b),
        }

    def headers(self, who: str) -> dict[str, str]:
        if who == "provider":
            return self.world.provider_a_headers
        return getattr(self.world, who).auth  # type: ignore[no-any-return]


async def build_scene(http: AsyncClient, world: World) -> Scene:
    """Orders in every state, made through the API."""

    async def place(service: str, who: dict[str, str]) -> str:
        r = await http.post("/v1/orders", json={"service_code": service}, headers=who)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def assign(order_id: str, caregiver: uuid.UUID) -> None:
        await ready(http, world.caregiver(caregiver))
        r = await http.post(
            f"/v1/ops/orders/{order_id}/assign",
            json={"caregiver_id": str(caregiver)},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text

    async def visit_of(order_id: str, who: dict[str, str]) -> str:
        r = await http.get("/v1/visits", headers=who)
        assert r.status_code == 200, r.text
        return next(str(v["id"]) for v in r.json()["items"] if v["order_id"] == order_id)

    pending = await place("cleaning", world.senior.auth)
    cancelled = await place("companionship", world.senior.auth)
    r = await http.post(
        f"/v1/orders/{cancelled}/cancel", json={"reason": "Family came"}, headers=world.senior.auth
    )
    assert r.status_code == 200, r.text
    completed = await place("meal_delivery", world.senior.auth)
    await assign(completed, world.helper.id)
    completed_visit = await visit_of(completed, world.helper.auth)
    r = await http.post(
        f"/v1/visits/{completed_visit}/check-in",
        json={"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]},
        headers=world.helper.auth,
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"/v1/visits/{completed_visit}/check-out", json={"notes": "Fed"}, headers=world.helper.auth
    )
    assert r.status_code == 200, r.text
    assigned = await place("companionship", world.senior.auth)
    await assign(assigned, world.nurse.id)
    visit = await visit_of(assigned, world.nurse.auth)
    neighbours = await place("cleaning", world.neighbour.auth)
    return Scene(
        world=world,
        pending=pending,
        assigned=assigned,
        visit=visit,
        completed=completed,
        completed_visit=completed_visit,
        cancelled=cancelled,
        neighbours=neighbours,
    )


@dataclass
class Stage:
    """What one test works on: the app (an unhandled error comes back as its 500 response, not as
    an exception, so a failing test shows what the client would see), the database and the scene."""

    http: AsyncClient
    sessionmaker: Sessionmaker
    world: World
    scene: Scene | None  # None: the bare world, no orders yet
    baseline: dict[str, Any]


@asynccontextmanager
async def staged(
    engine: AsyncEngine, settings: Settings, *, bare: bool = False
) -> AsyncIterator[Stage]:
    await wipe(engine)
    sessions = create_sessionmaker(engine)
    async with serving(settings) as client:
        transport = ASGITransport(app=client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
        async with AsyncClient(transport=transport, base_url=str(client.base_url)) as http:
            world = await build_world(sessions, settings, now=datetime.now(UTC))
            scene = None if bare else await build_scene(http, world)
            yield Stage(http, sessions, world, scene, await snapshot(sessions))


class SharedStage:
    """One scene for every test that only reads or is refused (nearly all of them): building it
    is most of a test's cost. A test that changes the database is marked ``fresh`` and gets a
    scene of its own; one that changes the shared scene unmarked fails in its teardown."""

    def __init__(self) -> None:
        self.stack: AsyncExitStack | None = None
        self.stage: Stage | None = None

    async def get(self, engine: AsyncEngine, settings: Settings) -> Stage:
        if self.stage is None:
            self.stack = AsyncExitStack()
            self.stage = await self.stack.enter_async_context(staged(engine, settings))
        return self.stage

    async def drop(self) -> None:
        if self.stack is not None:
            await self.stack.aclose()
        self.stack, self.stage = None, None


@pytest.fixture(scope="module")
async def shared(engine: AsyncEngine, settings: Settings) -> AsyncIterator[SharedStage]:
    holder = SharedStage()
    yield holder
    await holder.drop()


@pytest.fixture
async def stage(
    request: pytest.FixtureRequest, shared: SharedStage, engine: AsyncEngine, settings: Settings
) -> AsyncIterator[Stage]:
    if marker := request.node.get_closest_marker("fresh"):
        await shared.drop()
        async with staged(engine, settings, bare="bare" in marker.args) as own:
            yield own
        return
    mine = await shared.get(engine, settings)
    yield mine
    if await snapshot(mine.sessionmaker) != mine.baseline:
        await shared.drop()
        pytest.fail("this test changed the shared scene: mark it @pytest.mark.fresh")


@pytest.fixture
def http(stage: Stage) -> AsyncClient:
    return stage.http


@pytest.fixture
def sessionmaker(stage: Stage) -> Sessionmaker:
    return stage.sessionmaker


@pytest.fixture
def scene(stage: Stage) -> Scene:
    assert stage.scene is not None, "a test marked fresh('bare') has no scene"
    return stage.scene


@pytest.fixture
def world(stage: Stage) -> World:
    return stage.world


# --------------------------------------------------------------------------------------------
# Every request body the API takes, with a valid example of each
# --------------------------------------------------------------------------------------------


def _tomorrow(hour: int) -> datetime:
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def senior_body(_s: Scene) -> dict[str, Any]:
    return {
        "name": "Wang Shufen",
        "phone": "13900000042",
        "password": PASSWORD,
        "gender": "female",
        "address": "Room 9, 1 Xishaomen",
        "neighbourhood": "Tumen",
        "lat": HOME[0],
        "lon": HOME[1],
        "languages": ["zh"],
        "care_notes": "Hard of hearing.",
        "emergency_contacts": [{"name": "Wang Lei", "phone": "13900000043", "relation": "son"}],
    }


def caregiver_body(s: Scene) -> dict[str, Any]:
    return {
        "provider_id": str(s.world.provider_a.id),
        "name": "Zhao Li",
        "phone": "13700000042",
        "password": PASSWORD,
        "gender": "female",
        "languages": ["zh"],
        "skills": [{"skill": "bathing", "certificate_expires_on": "2099-01-01"}],
        "shifts": [{"starts_at": at(_tomorrow(8)), "ends_at": at(_tomorrow(16))}],
    }


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # formatted with Scene.ids()
    who: str  # a World attribute, or "provider"
    body: Callable[[Scene], dict[str, Any]]
    ok: int = 200  # what the valid example gets (proves the refusals are about the bad part)

    def url(self, s: Scene) -> str:
        return self.path.format(**s.ids())


BODIES: dict[str, Endpoint] = {
    "order": Endpoint("POST", "/v1/orders", "senior", lambda s: {"service_code": "bathing"}, 201),
    "cancel": Endpoint(
        "POST", "/v1/orders/{pending}/cancel", "senior", lambda s: {"reason": "Feeling better"}
    ),
    "rating": Endpoint(
        "POST", "/v1/orders/{completed}/rating", "senior", lambda s: {"score": 5, "comment": "Kind"}
    ),
    "senior": Endpoint("POST", "/v1/ops/seniors", "operator_a", senior_body, 201),
    "caregiver": Endpoint("POST", "/v1/ops/caregivers", "operator_a", caregiver_body, 201),
    "provider": Endpoint(
        "POST",
        "/v1/ops/providers",
        "operator_a",
        lambda s: {"login": "prov.new", "name": "New Care"},
        201,
    ),
    "shift": Endpoint(
        "POST",
        "/v1/ops/caregivers/{nurse}/shifts",
        "operator_a",
        lambda s: {"starts_at": at(_tomorrow(8)), "ends_at": at(_tomorrow(16))},
        201,
    ),
    "assign": Endpoint(
        "POST",
        "/v1/ops/orders/{pending}/assign",
        "operator_a",
        lambda s: {"caregiver_id": str(s.world.helper.id), "reason": "Phoned her"},
    ),
    "reassign": Endpoint(
        "POST",
        "/v1/ops/orders/{assigned}/reassign",
        "operator_a",
        lambda s: {"caregiver_id": str(s.world.helper.id)},
    ),
    "ops_cancel": Endpoint(
        "POST", "/v1/ops/orders/{pending}/cancel", "operator_a", lambda s: {"reason": "Duplicate"}
    ),
    "ops_check_in": Endpoint(
        "POST", "/v1/ops/visits/{visit}/check-in", "operator_a", lambda s: {"reason": "No GPS"}
    ),
    "check_in": Endpoint(
        "POST",
        "/v1/visits/{visit}/check-in",
        "nurse",
        lambda s: {"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]},
    ),
    # The visit is assigned, not started: the valid body gets past validation to a 409.
    "check_out": Endpoint(
        "POST", "/v1/visits/{visit}/check-out", "nurse", lambda s: {"notes": "Done"}, 409
    ),
    "withdraw": Endpoint(
        "POST", "/v1/visits/{visit}/withdraw", "nurse", lambda s: {"reason": "Flat tyre"}
    ),
    "position": Endpoint(
        "PUT", "/v1/caregivers/me/position", "nurse", lambda s: {"lat": FAR[0], "lon": FAR[1]}
    ),
    "duty": Endpoint("PUT", "/v1/caregivers/me/duty", "nurse", lambda s: {"on_duty": True}),
    "district": Endpoint(
        "POST",
        "/v1/admin/districts",
        "admin",
        lambda s: {"code": "yanta", "name": "Yanta", "city": "Xi'an"},
        201,
    ),
    "district_patch": Endpoint(
        "PATCH",
        "/v1/admin/districts/{district_b}",
        "admin",
        lambda s: {"city": "Xi'an", "time_zone": "Asia/Urumqi"},
    ),
    "operator": Endpoint(
        "POST",
        "/v1/admin/operators",
        "admin",
        lambda s: {
            "login": "op.c",
            "password": PASSWORD,
            "name": "Operator C",
            "district_id": str(s.world.district_a),
        },
        201,
    ),
}

# Required fields of each body (sending a body without one of them is a 422 naming it).
REQUIRED: dict[str, tuple[str, ...]] = {
    "order": ("service_code",),
    "cancel": ("reason",),
    "rating": ("score",),
    "senior": ("name", "phone", "password", "address", "neighbourhood", "lat", "lon"),
    "caregiver": ("provider_id", "name", "phone", "password", "gender"),
    "provider": ("login", "name"),
    "shift": ("starts_at", "ends_at"),
    "assign": ("caregiver_id",),
    "reassign": ("caregiver_id",),
    "ops_cancel": ("reason",),
    "ops_check_in": ("reason",),
    "check_in": ("lat", "lon"),
    "withdraw": ("reason",),
    "position": ("lat", "lon"),
    "duty": ("on_duty",),
    "district": ("code", "name", "city"),
    "operator": ("login", "password", "name", "district_id"),
}


async def send(http: AsyncClient, s: Scene, name: str, body: Any = None, **kwargs: Any) -> Response:
    ep = BODIES[name]
    headers = {**s.headers(ep.who), **kwargs.pop("headers", {})}
    if body is not None:
        kwargs["json"] = body
    return await http.request(ep.method, ep.url(s), headers=headers, **kwargs)


async def refused_body(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    s: Scene,
    name: str,
    *,
    status: int = 422,
    code: str | None = "validation_error",
    mentions: tuple[str, ...] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    ep = BODIES[name]
    headers = {**s.headers(ep.who), **kwargs.pop("headers", {})}
    return await refused(
        http,
        sessionmaker,
        ep.method,
        ep.url(s),
        status=status,
        code=code,
        mentions=mentions,
        headers=headers,
        **kwargs,
    )


# --------------------------------------------------------------------------------------------
# The valid examples work (so every refusal below is about the one bad part)
# --------------------------------------------------------------------------------------------


@pytest.mark.fresh
@pytest.mark.parametrize("name", list(BODIES))
async def test_the_valid_example_of_each_body_gets_past_validation(
    http: AsyncClient, scene: Scene, name: str
) -> None:
    r = await send(http, scene, name, BODIES[name].body(scene))
    assert r.status_code == BODIES[name].ok, r.text


# --------------------------------------------------------------------------------------------
# Unknown fields, wrong types, missing and null required fields, empty bodies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BODIES))
async def test_an_unknown_field_is_refused_in_every_body(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str
) -> None:
    body = {**BODIES[name].body(scene), "surprise": 1}
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=("surprise",))


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("senior", ("emergency_contacts", 0, "email")),
        ("caregiver", ("skills", 0, "level")),
        ("caregiver", ("shifts", 0, "break_min")),
    ],
)
async def test_an_unknown_field_in_a_nested_object_is_refused(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    path: tuple[str | int, ...],
) -> None:
    body = set_path(BODIES[name].body(scene), path, "x")
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(str(path[-1]),))


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        # Fields the server owns: a client must not be able to set them (mass assignment).
        ("order", "status", "completed"),
        ("order", "price_fen", 0),
        ("order", "senior_id", ZERO_UUID),
        ("order", "district_id", ZERO_UUID),
        ("order", "caregiver_id", ZERO_UUID),
        ("order", "id", ZERO_UUID),
        ("order", "rating", 5),
        ("senior", "district_id", ZERO_UUID),
        ("senior", "role", "admin"),
        ("caregiver", "on_duty", True),
        ("caregiver", "rating_sum", 500),
        ("position", "position_at", "2020-01-01T00:00:00+00:00"),
        ("rating", "caregiver_id", ZERO_UUID),
        ("check_in", "distance_m", 0),
        ("operator", "role", "admin"),
        ("district_patch", "code", "beilin-2"),
        ("district_patch", "id", ZERO_UUID),
    ],
)
async def test_a_server_owned_field_cannot_be_set_by_the_client(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str, field: str, value: Any
) -> None:
    body = {**BODIES[name].body(scene), field: value}
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(field,))


WRONG_TYPES: list[tuple[str, tuple[str | int, ...], Any]] = [
    ("order", ("service_code",), 42),
    ("order", ("service_code",), None),
    ("order", ("service_code",), ["bathing"]),
    ("order", ("service_code",), {"code": "bathing"}),
    ("order", ("duration_min",), "long"),
    ("order", ("duration_min",), 45.5),
    ("order", ("duration_min",), [60]),
    ("order", ("priority",), "asap"),
    ("order", ("priority",), None),
    ("order", ("notes",), {"text": "hi"}),
    ("order", ("notes",), None),
    ("order", ("window_start",), "tomorrow morning"),
    ("order", ("window_start",), "2026-02-30T09:00:00+08:00"),
    ("rating", ("score",), "five"),
    ("rating", ("score",), None),
    ("rating", ("score",), [5]),
    ("rating", ("score",), 4.5),
    ("rating", ("score",), {"value": 5}),
    ("rating", ("comment",), 5),
    ("cancel", ("reason",), None),
    ("cancel", ("reason",), 42),
    ("cancel", ("reason",), ["ill"]),
    ("ops_cancel", ("reason",), {"text": "x"}),
    ("withdraw", ("reason",), None),
    ("ops_check_in", ("reason",), ["x"]),
    ("assign", ("caregiver_id",), None),
    ("assign", ("caregiver_id",), 42),
    ("assign", ("caregiver_id",), "nurse-zhang"),
    ("assign", ("caregiver_id",), {"id": ZERO_UUID}),
    ("assign", ("caregiver_id",), [ZERO_UUID]),
    ("assign", ("reason",), None),
    ("assign", ("override",), "yes please"),
    ("assign", ("override",), None),
    ("assign", ("override",), [True]),
    ("reassign", ("override",), {"on": True}),
    ("reassign", ("caregiver_id",), "123"),
    ("check_in", ("lat",), "north"),
    ("check_in", ("lat",), None),
    ("check_in", ("lon",), [108.9]),
    ("check_in", ("lon",), {"deg": 108}),
    ("check_out", ("notes",), ["done"]),
    ("position", ("lat",), "34.2N"),
    ("position", ("lon",), None),
    ("position", ("recorded_at",), "a minute ago"),
    ("position", ("recorded_at",), {"t": 1}),
    ("duty", ("on_duty",), "maybe"),
    ("duty", ("on_duty",), None),
    ("duty", ("on_duty",), [True]),
    ("senior", ("phone",), 13900000042),
    ("senior", ("name",), None),
    ("senior", ("lat",), "34.26N"),
    ("senior", ("lat",), None),
    ("senior", ("languages",), "zh"),
    ("senior", ("languages",), [1]),
    ("senior", ("emergency_contacts",), {"name": "Wang Lei", "phone": "13900000043"}),
    ("senior", ("emergency_contacts",), ["Wang Lei 13900000043"]),
    ("senior", ("emergency_contacts", 0, "phone"), None),
    ("senior", ("gender",), "robot"),
    ("senior", ("password",), None),
    ("senior", ("preferred_caregivers",), ["nurse-zhang"]),
    ("senior", ("preferred_caregivers",), ZERO_UUID),
    ("senior", ("gender_strict",), "sometimes"),
    ("caregiver", ("service_radius_m",), "far"),
    ("caregiver", ("daily_visit_cap",), 2.5),
    ("caregiver", ("skills",), "bathing"),
    ("caregiver", ("skills",), ["bathing"]),
    ("caregiver", ("shifts",), {"starts_at": "2030-01-01T08:00:00+08:00"}),
    ("caregiver", ("gender",), None),
    ("caregiver", ("provider_id",), "anxin"),
    ("caregiver", ("skills", 0, "certificate_expires_on"), "someday"),
    ("shift", ("starts_at",), "eight o'clock"),
    ("shift", ("ends_at",), None),
    ("provider", ("auto_accept",), "perhaps"),
    ("provider", ("name",), 7),
    ("district", ("code",), 7),
    ("district", ("time_zone",), 8),
    ("district", ("time_zone",), None),
    ("district_patch", ("time_zone",), ["UTC"]),
    ("district_patch", ("time_zone",), None),
    ("district_patch", ("name",), None),
    ("district_patch", ("city",), 7),
    ("operator", ("district_id",), "lianhu"),
    # Numbers are numbers: no booleans, no numeric strings (lax parsing took true as 1 star).
    *[
        (name, path, value)
        for name, path, good in [
            ("order", ("duration_min",), 60),
            ("rating", ("score",), 5),
            ("senior", ("lat",), 34.2),
            ("senior", ("lon",), 108.9),
            ("caregiver", ("service_radius_m",), 5000),
            ("caregiver", ("daily_visit_cap",), 8),
            ("check_in", ("lat",), 34.2),
            ("check_in", ("lon",), 108.9),
            ("position", ("lat",), 34.2),
            ("position", ("lon",), 108.9),
        ]
        for value in (True, False, str(good))
    ],
    ("rating", ("score",), 5.0),
    ("caregiver", ("daily_visit_cap",), 8.0),
    # Booleans are booleans: no "true", no 1 or 0.
    *[
        (name, (field,), value)
        for name, field in [
            ("duty", "on_duty"),
            ("assign", "override"),
            ("senior", "gender_strict"),
            ("provider", "auto_accept"),
        ]
        for value in ("true", "false", 1, 0)
    ],
]


def _lax_scalars(tp: Any) -> list[Any]:
    """The int/float/bool inside ``tp`` that are not marked Strict."""
    if tp in (int, float, bool):
        return [tp]
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        if base in (int, float, bool) and any(isinstance(m, Strict) for m in meta):
            return []
        return _lax_scalars(base)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return []  # its own fields are checked as a model of their own
    return [found for arg in typing.get_args(tp) for found in _lax_scalars(arg)]


def _request_models() -> list[type[Input]]:
    import app.routers
    import app.schemas

    for package in (app.routers, app.schemas):  # every router and every schema
        for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    found, todo = [], [Input]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def test_every_number_and_boolean_of_every_request_body_is_strict() -> None:
    """Guards the table above for bodies added later: every int, float and bool field of every
    request schema refuses booleans and strings (a JSON integer still fits a float)."""
    lax = [
        f"{model.__module__}.{model.__name__}.{name}"
        for model in _request_models()
        for name, info in model.model_fields.items()
        if (
            _lax_scalars(info.annotation)
            if info.annotation not in (int, float, bool)
            else not any(isinstance(m, Strict) for m in info.metadata)
        )
    ]
    assert len(_request_models()) > 10
    assert lax == []


@pytest.mark.parametrize(
    ("name", "path", "value"),
    WRONG_TYPES,
    ids=[f"{n}-{'.'.join(map(str, p))}-{json.dumps(v)[:24]}" for n, p, v in WRONG_TYPES],
)
async def test_a_wrong_type_is_a_422_naming_the_field(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    path: tuple[str | int, ...],
    value: Any,
) -> None:
    body = set_path(BODIES[name].body(scene), path, value)
    field = next(str(p) for p in reversed(path) if isinstance(p, str))
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(field,))


@pytest.mark.parametrize("name", ["assign", "reassign"])
@pytest.mark.parametrize("reason", [DROP, "", "   "], ids=["absent", "empty", "blank"])
async def test_an_override_without_a_reason_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str, reason: Any
) -> None:
    """Setting the rules aside must say why: the reason is what is recorded."""
    body = {**BODIES[name].body(scene), "override": True, "reason": "x"}
    body = set_path(body, ("reason",), reason)
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=("reason",))


MISSING = [(name, field) for name, fields in REQUIRED.items() for field in fields]


@pytest.mark.parametrize(("name", "field"), MISSING, ids=[f"{n}-{f}" for n, f in MISSING])
async def test_a_missing_required_field_is_a_422_naming_it(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str, field: str
) -> None:
    body = set_path(BODIES[name].body(scene), (field,), DROP)
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(field,))


@pytest.mark.parametrize("name", list(BODIES))
@pytest.mark.parametrize(
    "raw",
    [b"", b"null", b"[]", b"42", b'"bathing"', b"true"],
    ids=["empty", "null", "list", "number", "string", "bool"],
)
async def test_a_body_that_is_missing_or_not_an_object_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str, raw: bytes
) -> None:
    await refused_body(
        http,
        sessionmaker,
        scene,
        name,
        content=raw,
        headers={"Content-Type": "application/json"},
        mentions=("body",),
    )


@pytest.mark.parametrize("name", list(BODIES))
async def test_no_body_at_all_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str
) -> None:
    await refused_body(http, sessionmaker, scene, name, mentions=("body",))


@pytest.mark.parametrize("name", list(BODIES))
async def test_a_list_instead_of_the_object_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str
) -> None:
    await refused_body(
        http, sessionmaker, scene, name, json=[BODIES[name].body(scene)], mentions=("body",)
    )


@pytest.mark.parametrize(
    ("name", "path", "length"),
    [
        ("order", ("notes",), 2001),
        ("order", ("service_code",), 41),
        ("cancel", ("reason",), 501),
        ("rating", ("comment",), 1001),
        ("assign", ("reason",), 501),
        ("check_out", ("notes",), 2001),
        ("senior", ("name",), 121),
        ("senior", ("address",), 256),
        ("senior", ("care_notes",), 4001),
        ("senior", ("emergency_contacts", 0, "relation"), 41),
        ("caregiver", ("name",), 121),
        ("caregiver", ("password",), 129),
        ("provider", ("login",), 65),
        ("district", ("code",), 33),
        ("district", ("time_zone",), 65),
        ("district_patch", ("city",), 121),
    ],
)
async def test_an_overlong_string_is_a_422_naming_the_field(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    path: tuple[str | int, ...],
    length: int,
) -> None:
    body = set_path(BODIES[name].body(scene), path, "a" * length)
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(str(path[-1]),))


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("cancel", "reason"),
        ("ops_cancel", "reason"),
        ("withdraw", "reason"),
        ("ops_check_in", "reason"),
        ("senior", "name"),
        ("senior", "address"),
        ("caregiver", "name"),
    ],
)
@pytest.mark.parametrize("blank", ["", "   "], ids=["empty", "spaces"])
async def test_a_blank_required_string_is_a_422(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    field: str,
    blank: str,
) -> None:
    body = {**BODIES[name].body(scene), field: blank}
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(field,))


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("senior", ("phone",), "not-a-phone"),
        ("senior", ("phone",), "123"),
        ("senior", ("emergency_contacts", 0, "phone"), "call me"),
        ("senior", ("password",), "short"),
        ("senior", ("languages",), ["zh"] * 11),
        ("senior", ("emergency_contacts",), [{"name": "A", "phone": "13900000043"}] * 6),
        ("caregiver", ("phone",), "+86 137 0000"),
        ("caregiver", ("phone",), "12900000001"),
        ("caregiver", ("service_radius_m",), 99),
        ("caregiver", ("service_radius_m",), 100_001),
        ("caregiver", ("daily_visit_cap",), 0),
        ("caregiver", ("skills", 0, "skill"), "Bathing!"),
        ("caregiver", ("skills",), [{"skill": f"skill_{chr(97 + i % 26)}" * 2} for i in range(31)]),
        ("order", ("duration_min",), 4),
        ("order", ("duration_min",), 721),
        ("order", ("duration_min",), -60),
        ("order", ("service_code",), "Bathing"),
        ("order", ("service_code",), "bath-ing"),
        ("order", ("service_code",), ""),
        ("provider", ("login",), "a b"),
        ("district", ("code",), "Yan Ta"),
        ("operator", ("login",), "op"),
    ],
)
async def test_a_value_outside_its_rules_is_a_422_naming_the_field(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    path: tuple[str | int, ...],
    value: Any,
) -> None:
    body = set_path(BODIES[name].body(scene), path, value)
    field = next(str(p) for p in reversed(path) if isinstance(p, str))
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(field,))


# --------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------

BAD_COORDINATES = [
    ("lat", 91),
    ("lat", -91),
    ("lat", 90.0001),
    ("lon", 181),
    ("lon", -181),
    ("lon", -180.5),
    ("lat", 1e308),
]
NON_FINITE = ["NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize("name", ["senior", "check_in", "position"])
@pytest.mark.parametrize(("field", "value"), BAD_COORDINATES)
async def test_an_out_of_range_coordinate_is_a_422(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    field: str,
    value: float,
) -> None:
    body = {**BODIES[name].body(scene), field: value}
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=(field,))


@pytest.mark.parametrize("name", ["senior", "check_in", "position"])
@pytest.mark.parametrize("field", ["lat", "lon"])
@pytest.mark.parametrize("literal", NON_FINITE)
async def test_a_non_finite_coordinate_sent_as_a_raw_json_literal_is_a_422(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    field: str,
    literal: str,
) -> None:
    body = {**BODIES[name].body(scene), field: 0.0}
    raw = json.dumps(body).replace(f'"{field}": 0.0', f'"{field}": {literal}')
    assert literal in raw
    await refused_body(
        http,
        sessionmaker,
        scene,
        name,
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
        mentions=(field,),
    )


@pytest.mark.fresh
async def test_the_edges_of_the_globe_are_valid_positions(http: AsyncClient, scene: Scene) -> None:
    for lat, lon in [(90, 180), (-90, -180), (0, 0)]:
        r = await send(http, scene, "position", {"lat": lat, "lon": lon})
        assert r.status_code == 200, r.text
        assert (r.json()["lat"], r.json()["lon"]) == (lat, lon)


async def test_a_check_in_far_from_home_is_refused_and_the_visit_is_not_started(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    await refused_body(
        http,
        sessionmaker,
        scene,
        "check_in",
        json={"lat": FAR[0], "lon": FAR[1]},
        code="too_far",
        mentions=(" m ",),
    )


@pytest.mark.parametrize(
    "recorded_at",
    ["2026-11-24T09:00:00", "in the future"],
    ids=["naive", "not-a-date"],
)
async def test_a_bad_position_timestamp_is_a_422_and_the_position_stays(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, recorded_at: str
) -> None:
    body = {"lat": FAR[0], "lon": FAR[1], "recorded_at": recorded_at}
    await refused_body(http, sessionmaker, scene, "position", json=body, mentions=("recorded_at",))


async def test_a_position_from_the_future_is_a_422_and_the_position_stays(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    future = at(datetime.now(UTC) + timedelta(hours=1))
    body = {"lat": FAR[0], "lon": FAR[1], "recorded_at": future}
    await refused_body(http, sessionmaker, scene, "position", json=body, code="position_in_future")


# --------------------------------------------------------------------------------------------
# Order windows and services
# --------------------------------------------------------------------------------------------


def _window(start: datetime | str | None, end: datetime | str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"service_code": "bathing"}  # 60 minutes by default
    if start is not None:
        body["window_start"] = start if isinstance(start, str) else at(start)
    if end is not None:
        body["window_end"] = end if isinstance(end, str) else at(end)
    return body


def _in(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


WINDOWS: list[tuple[str, Callable[[], dict[str, Any]], str, tuple[str, ...]]] = [
    ("end-before-start", lambda: _window(_in(26), _in(24)), "validation_error", ("window_end",)),
    ("end-equals-start", lambda: _window(*[_in(24)] * 2), "validation_error", ("window_end",)),
    ("only-start", lambda: _window(_in(24), None), "validation_error", ("window_end",)),
    ("only-end", lambda: _window(None, _in(24)), "validation_error", ("window_start",)),
    (
        "naive-start",
        lambda: _window(_in(24).replace(tzinfo=None), _in(27)),
        "validation_error",
        ("window_start", "timezone"),
    ),
    (
        "naive-end",
        lambda: _window(_in(24), _in(27).replace(tzinfo=None)),
        "validation_error",
        ("window_end", "timezone"),
    ),
    ("in-the-past", lambda: _window(_in(-5), _in(-2)), "window_in_past", ()),
    ("200-days-ahead", lambda: _window(_in(200 * 24), _in(200 * 24 + 3)), "window_too_far", ()),
    ("shorter-than-service", lambda: _window(_in(24), _in(24.5)), "window_too_short", ("60",)),
    (
        "shorter-than-duration",
        lambda: {**_window(_in(24), _in(25)), "duration_min": 90},
        "window_too_short",
        ("90",),
    ),
    (
        "not-a-date",
        lambda: _window("2026-13-45T09:00:00+08:00", _in(27)),
        "validation_error",
        ("window_start",),
    ),
    # The year 1 or 9999 in a far timezone is a valid ISO 8601 string whose UTC instant does not
    # exist in Python; the checks compare fine, so only storing it can fail.
    (
        "start-before-year-1-utc",
        lambda: _window("0001-01-01T00:00:00+14:00", _in(3)),
        "",
        (),
    ),
    (
        "end-after-year-9999-utc",
        lambda: _window(_in(24), "9999-12-31T23:00:00-23:00"),
        "",
        (),
    ),
]


@pytest.mark.parametrize(
    ("body", "code", "mentions"),
    [pytest.param(b, c, m, id=i) for i, b, c, m in WINDOWS],
)
async def test_a_bad_order_window_is_a_422_and_no_order_is_created(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    world: World,
    body: Callable[[], dict[str, Any]],
    code: str,
    mentions: tuple[str, ...],
) -> None:
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/orders",
        json=body(),
        headers=world.senior.auth,
        status=422,
        code=code or None,
        mentions=mentions,
    )


@pytest.mark.parametrize("service", ["spa_day", "emergency"])
async def test_an_unknown_service_is_a_422_naming_it(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World, service: str
) -> None:
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/orders",
        json={"service_code": service},
        headers=world.senior.auth,
        status=422,
        code="unknown_service",
        mentions=(service,),
    )


# --------------------------------------------------------------------------------------------
# Bodies that are not JSON, not readable, or too big
# --------------------------------------------------------------------------------------------

MALFORMED: list[tuple[str, bytes]] = [
    ("truncated", b'{"service_code": "bathing"'),
    ("trailing-comma", b'{"service_code": "bathing",}'),
    ("single-quotes", b"{'service_code': 'bathing'}"),
    ("unquoted-key", b'{service_code: "bathing"}'),
    ("trailing-garbage", b'{"service_code": "bathing"} x'),
    ("two-documents", b'{"service_code": "bathing"}{"service_code": "bathing"}'),
    ("comment", b'{"service_code": "bathing" /* asap */}'),
    ("form-encoded", b"service_code=bathing"),
    ("xml", b"<order><service_code>bathing</service_code></order>"),
    ("not-utf8", b'{"service_code": "bathing", "notes": "\xff\xfe"}'),
    (
        "deeply-nested",
        b'{"service_code": "bathing", "notes": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    ),
    ("huge-integer", b'{"service_code": "bathing", "duration_min": ' + b"9" * 5000 + b"}"),
]


@pytest.mark.parametrize("raw", [pytest.param(b, id=i) for i, b in MALFORMED])
async def test_malformed_json_is_a_422_and_no_order_is_created(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World, raw: bytes
) -> None:
    """Malformed JSON is a validation error (422, ``validation_error``), whichever way it is
    malformed: a parser that gives up on bad bytes or on depth is still refusing the client's JSON."""
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/orders",
        content=raw,
        headers={**world.senior.auth, "Content-Type": "application/json"},
        status=422,
        code="validation_error",
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "text/json",
        "multipart/form-data; boundary=xyz",
        None,
    ],
)
async def test_json_sent_with_a_non_json_content_type_is_refused(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World, content_type: str | None
) -> None:
    """A body the API will not read as JSON is refused (415 or 422), never guessed at."""
    headers = dict(world.senior.auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = await snapshot(sessionmaker)
    r = await http.post("/v1/orders", content=b'{"service_code": "bathing"}', headers=headers)
    assert r.status_code in (415, 422), r.text
    assert_problem(r, r.status_code)
    assert await snapshot(sessionmaker) == before


async def test_a_real_form_post_to_a_json_endpoint_is_refused(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World
) -> None:
    before = await snapshot(sessionmaker)
    r = await http.post(
        "/v1/orders", files={"service_code": (None, "bathing")}, headers=world.senior.auth
    )
    assert r.status_code in (415, 422), r.text
    assert_problem(r, r.status_code)
    assert await snapshot(sessionmaker) == before


def _big_body(size: int = TWO_MB) -> bytes:
    return json.dumps({"service_code": "bathing", "notes": "x" * size}).encode()


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


BIG_TARGETS = ["order", "senior", "caregiver", "position", "check_in", "cancel", "rating"]


@pytest.mark.parametrize("name", BIG_TARGETS)
async def test_a_2mb_body_with_its_content_length_is_a_413(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str
) -> None:
    await refused_body(
        http,
        sessionmaker,
        scene,
        name,
        content=_big_body(),
        headers={"Content-Type": "application/json"},
        status=413,
        code="payload_too_large",
    )


async def test_a_body_one_byte_over_the_limit_is_a_413(
    http: AsyncClient, sessionmaker: Sessionmaker, settings: Settings, world: World
) -> None:
    notes = "x" * (settings.max_body_bytes + 1 - len(_big_body(0)))
    raw = json.dumps({"service_code": "bathing", "notes": notes}).encode()
    assert len(raw) == settings.max_body_bytes + 1
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/orders",
        content=raw,
        headers={**world.senior.auth, "Content-Type": "application/json"},
        status=413,
        code="payload_too_large",
    )


@pytest.mark.parametrize("name", BIG_TARGETS)
async def test_a_2mb_chunked_body_without_content_length_is_a_413(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str
) -> None:
    """Streamed (Transfer-Encoding: chunked): the limit must hold while reading, with the same
    answer as for a declared size."""
    await refused_body(
        http,
        sessionmaker,
        scene,
        name,
        content=_chunks(_big_body()),
        headers={"Content-Type": "application/json"},
        status=413,
        code="payload_too_large",
    )


@pytest.mark.parametrize("name", ["order", "senior", "position"])
async def test_a_2mb_body_that_lies_about_its_content_length_is_a_413(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str
) -> None:
    await refused_body(
        http,
        sessionmaker,
        scene,
        name,
        content=_chunks(_big_body()),
        headers={"Content-Type": "application/json", "Content-Length": "100"},
        status=413,
        code="payload_too_large",
    )


async def test_an_oversized_body_is_a_413_even_without_authentication(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World
) -> None:
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/ops/seniors",
        content=_big_body(),
        headers={"Content-Type": "application/json"},
        status=413,
        code="payload_too_large",
    )


# --------------------------------------------------------------------------------------------
# Strings the databases cannot store
# --------------------------------------------------------------------------------------------

UNSTORABLE = [
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\ud800b", id="lone-surrogate"),
]


@pytest.mark.fresh
@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("order", "notes"),
        ("senior", "name"),
        ("senior", "care_notes"),
        ("caregiver", "name"),
        ("cancel", "reason"),
        ("rating", "comment"),
        ("ops_check_in", "reason"),
    ],
)
@pytest.mark.parametrize("text", UNSTORABLE)
async def test_text_the_database_cannot_store_is_never_a_500(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    field: str,
    text: str,
) -> None:
    """Either stored and returned intact, or refused with a 422; the same on every database."""
    body = {**BODIES[name].body(scene), field: text}
    raw = json.dumps(body).encode()  # \u0000 and \ud800 as JSON escapes, as any client sends
    ep = BODIES[name]
    before = await snapshot(sessionmaker)
    r = await http.request(
        ep.method,
        ep.url(scene),
        content=raw,
        headers={**scene.headers(ep.who), "Content-Type": "application/json"},
    )
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    if r.status_code >= 400:
        assert_problem(r, 422, mentions=(field,))
        assert await snapshot(sessionmaker) == before
    else:
        assert r.status_code == ep.ok, r.text


@pytest.mark.parametrize(
    ("url", "who"),
    [
        ("/v1/ops/seniors?q=a%00b", "operator_a"),
        ("/v1/ops/queue?service_code=a%00b", "operator_a"),
    ],
)
async def test_a_nul_byte_in_a_search_parameter_is_never_a_500(
    http: AsyncClient, scene: Scene, url: str, who: str
) -> None:
    r = await http.get(url, headers=scene.headers(who))
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    if r.status_code >= 400:
        assert_problem(r, 422)
    else:
        assert r.json()["items"] == []


async def test_a_nul_byte_in_a_login_is_a_clean_refusal(http: AsyncClient, world: World) -> None:
    r = await http.post("/v1/auth/token", data={"username": "1390\x000001", "password": PASSWORD})
    assert r.status_code in (401, 422), f"{r.status_code}: {r.text[:300]}"
    assert_problem(r, r.status_code)


# --------------------------------------------------------------------------------------------
# Times that exist in ISO 8601 but not in UTC
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body"),
    [
        pytest.param(
            "position",
            {"lat": 1.0, "lon": 2.0, "recorded_at": "0001-01-01T00:00:00+14:00"},
            id="position-year-1",
        ),
        pytest.param(
            "shift",
            {"starts_at": "0001-01-01T00:00:00+14:00", "ends_at": "0001-01-01T05:00:00+14:00"},
            id="shift-year-1",
        ),
        pytest.param(
            "shift",
            {"starts_at": "9999-12-31T20:00:00-23:00", "ends_at": "9999-12-31T23:00:00-23:00"},
            id="shift-year-9999",
        ),
    ],
)
async def test_a_time_outside_the_representable_range_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str, body: dict[str, Any]
) -> None:
    await refused_body(http, sessionmaker, scene, name, json=body, code=None)


async def test_a_caregiver_registered_with_a_year_1_shift_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    body = caregiver_body(scene)
    body["shifts"] = [
        {"starts_at": "0001-01-01T00:00:00+14:00", "ends_at": "0001-01-01T05:00:00+14:00"}
    ]
    await refused_body(http, sessionmaker, scene, "caregiver", json=body, code=None)


@pytest.mark.parametrize(
    ("name", "body", "mentions"),
    [
        ("shift", {"starts_at": at(_tomorrow(16)), "ends_at": at(_tomorrow(8))}, ("ends_at",)),
        ("shift", {"starts_at": at(_tomorrow(0)), "ends_at": at(_tomorrow(25))}, ("24 hours",)),
        ("shift", {"starts_at": "2030-01-01T08:00:00", "ends_at": "2030-01-01T16:00:00"}, ()),
    ],
    ids=["ends-before-start", "longer-than-24h", "naive"],
)
async def test_a_bad_shift_is_a_422(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    body: dict[str, Any],
    mentions: tuple[str, ...],
) -> None:
    await refused_body(http, sessionmaker, scene, name, json=body, mentions=mentions)


async def test_an_overlapping_shift_is_a_409(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    body = {"starts_at": at(_in(1)), "ends_at": at(_in(3))}  # the nurse works now-2h..now+10h
    await refused_body(
        http, sessionmaker, scene, "shift", json=body, status=409, code="shift_overlap"
    )


# --------------------------------------------------------------------------------------------
# Query strings: pagination and filters
# --------------------------------------------------------------------------------------------

LISTS = [
    ("/v1/orders", "senior"),
    ("/v1/visits", "nurse"),
    ("/v1/ops/queue", "operator_a"),
    ("/v1/ops/seniors", "operator_a"),
    ("/v1/ops/caregivers", "operator_a"),
    ("/v1/provider/caregivers", "provider"),
    ("/v1/provider/visits", "provider"),
]
BAD_PAGES = [
    ("limit=1000", "page_too_large", "limit"),
    ("limit=101", "page_too_large", "limit"),
    ("limit=99999999999999999999999", "page_too_large", "limit"),
    ("limit=0", "validation_error", "limit"),
    ("limit=-5", "validation_error", "limit"),
    ("limit=abc", "validation_error", "limit"),
    ("limit=10.5", "validation_error", "limit"),
    ("limit=", "validation_error", "limit"),
    # Offsets repeat or skip items while the list changes: any offset is refused, naming cursor.
    ("offset=0", "offset_not_supported", "cursor"),
    ("offset=20", "offset_not_supported", "cursor"),
    ("offset=-1", "offset_not_supported", "cursor"),
    ("offset=abc", "offset_not_supported", "cursor"),
    ("cursor=", "validation_error", "cursor"),
    ("cursor=not%20base64!", "validation_error", "cursor"),
    ("cursor=" + "A" * 1001, "validation_error", "cursor"),
    ("cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "bad_cursor", "cursor"),
    ("cursor=W1sicyIsIngiXV0", "bad_cursor", "cursor"),
]


@pytest.mark.parametrize(("path", "who"), LISTS, ids=[p for p, _ in LISTS])
@pytest.mark.parametrize(("query", "code", "field"), BAD_PAGES, ids=[q for q, _, _ in BAD_PAGES])
async def test_a_bad_page_is_a_422(
    http: AsyncClient, scene: Scene, path: str, who: str, query: str, code: str, field: str
) -> None:
    r = await http.get(f"{path}?{query}", headers=scene.headers(who))
    assert_problem(r, 422, code, mentions=(field,))


@pytest.mark.parametrize(("path", "who"), LISTS, ids=[p for p, _ in LISTS])
async def test_the_largest_page_is_allowed(
    http: AsyncClient, scene: Scene, path: str, who: str
) -> None:
    r = await http.get(f"{path}?limit=100", headers=scene.headers(who))
    assert r.status_code == 200, r.text
    assert r.json()["limit"] == 100


@pytest.mark.parametrize(
    ("path", "who"), [*LISTS, ("/v1/offers", "nurse")], ids=[*(p for p, _ in LISTS), "offers"]
)
async def test_following_cursors_one_by_one_gives_the_whole_list_in_order(
    http: AsyncClient, scene: Scene, path: str, who: str
) -> None:
    r = await http.get(f"{path}?limit=100", headers=scene.headers(who))
    whole = [item.get("id") for item in r.json()["items"]]
    seen: list[Any] = []
    cursor = None
    for _ in range(len(whole) + 1):
        params = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        r = await http.get(path, params=params, headers=scene.headers(who))
        assert r.status_code == 200, r.text
        seen += [item.get("id") for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == whole


@pytest.mark.parametrize(("path", "who"), LISTS, ids=[p for p, _ in LISTS])
async def test_a_tampered_cursor_is_a_422(
    http: AsyncClient, scene: Scene, settings: Settings, path: str, who: str
) -> None:
    """A cursor is opaque and signed: edited by hand or taken to another list, it is refused."""
    r = await http.get(f"{path}?limit=1", headers=scene.headers(who))
    assert r.status_code == 200, r.text
    cursor = r.json()["next_cursor"]
    if cursor is None:  # a one-item list: sign one for the path as the server would
        cursor = PageParams(1, None, path, cursor_secret(settings)).cursor([1])
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-2] ^= 1
    edited = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    r = await http.get(f"{path}?cursor={edited}", headers=scene.headers(who))
    assert_problem(r, 422, "bad_cursor", mentions=("cursor",))
    other = "/v1/ops/queue" if path != "/v1/ops/queue" else "/v1/ops/seniors"
    r = await http.get(f"{other}?cursor={cursor}", headers=scene.headers("operator_a"))
    assert_problem(r, 422, "bad_cursor", mentions=("cursor",))


@pytest.mark.parametrize(
    ("url", "who", "field"),
    [
        ("/v1/orders?status=bogus", "senior", "status"),
        ("/v1/visits?status=done", "nurse", "status"),
        ("/v1/provider/visits?status=1", "provider", "status"),
        ("/v1/ops/queue?status=PENDING", "operator_a", "status"),
        ("/v1/ops/queue?priority=asap", "operator_a", "priority"),
        ("/v1/ops/queue?service_code=" + "a" * 41, "operator_a", "service_code"),
        ("/v1/ops/seniors?q=", "operator_a", "q"),
        ("/v1/ops/seniors?q=" + "a" * 61, "operator_a", "q"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    http: AsyncClient, scene: Scene, url: str, who: str, field: str
) -> None:
    r = await http.get(url, headers=scene.headers(who))
    assert_problem(r, 422, "validation_error", mentions=(field,))


# --------------------------------------------------------------------------------------------
# Paths: invalid and unknown ids, unknown routes, wrong methods
# --------------------------------------------------------------------------------------------

ID_ROUTES: list[tuple[str, str, str, str, dict[str, Any] | None]] = [
    # method, path with {id}, parameter name, who, body
    ("GET", "/v1/orders/{id}", "order_id", "senior", None),
    ("POST", "/v1/orders/{id}/cancel", "order_id", "senior", {"reason": "x"}),
    ("POST", "/v1/orders/{id}/rating", "order_id", "senior", {"score": 5}),
    ("GET", "/v1/visits/{id}", "visit_id", "nurse", None),
    ("POST", "/v1/visits/{id}/check-in", "visit_id", "nurse", {"lat": 1.0, "lon": 1.0}),
    ("POST", "/v1/visits/{id}/check-out", "visit_id", "nurse", {}),
    ("POST", "/v1/visits/{id}/withdraw", "visit_id", "nurse", {"reason": "x"}),
    ("GET", "/v1/ops/orders/{id}", "order_id", "operator_a", None),
    ("POST", "/v1/ops/orders/{id}/assign", "order_id", "operator_a", {"caregiver_id": ZERO_UUID}),
    ("POST", "/v1/ops/orders/{id}/reassign", "order_id", "operator_a", {"caregiver_id": ZERO_UUID}),
    ("POST", "/v1/ops/orders/{id}/cancel", "order_id", "operator_a", {"reason": "x"}),
    ("POST", "/v1/ops/visits/{id}/check-in", "visit_id", "operator_a", {"reason": "x"}),
    ("GET", "/v1/ops/seniors/{id}", "senior_id", "operator_a", None),
    (
        "POST",
        "/v1/ops/caregivers/{id}/shifts",
        "caregiver_id",
        "operator_a",
        {"starts_at": "2030-01-01T08:00:00+08:00", "ends_at": "2030-01-01T16:00:00+08:00"},
    ),
    ("GET", "/v1/provider/visits/{id}", "visit_id", "provider", None),
    ("PATCH", "/v1/admin/districts/{id}", "district_id", "admin", {"name": "Yanta"}),
]
BAD_IDS = [
    "not-a-uuid",
    "123",
    "00000000-0000-0000-0000-00000000000g",
    ZERO_UUID + "0",
    "%F0%9F%98%80",
]


@pytest.mark.parametrize(
    ("method", "path", "param", "who", "body"),
    ID_ROUTES,
    ids=[f"{m} {p}" for m, p, *_ in ID_ROUTES],
)
@pytest.mark.parametrize("bad", BAD_IDS)
async def test_an_invalid_uuid_in_the_path_is_a_422_naming_the_parameter(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    method: str,
    path: str,
    param: str,
    who: str,
    body: dict[str, Any] | None,
    bad: str,
) -> None:
    await refused(
        http,
        sessionmaker,
        method,
        path.format(id=bad),
        json=body,
        headers=scene.headers(who),
        status=422,
        code="validation_error",
        mentions=(param,),
    )


@pytest.mark.parametrize(
    ("method", "path", "param", "who", "body"),
    ID_ROUTES,
    ids=[f"{m} {p}" for m, p, *_ in ID_ROUTES],
)
async def test_an_unknown_id_is_a_404(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    method: str,
    path: str,
    param: str,
    who: str,
    body: dict[str, Any] | None,
) -> None:
    await refused(
        http,
        sessionmaker,
        method,
        path.format(id=uuid.uuid4()),
        json=body,
        headers=scene.headers(who),
        status=404,
        code="not_found",
    )


@pytest.mark.parametrize(
    ("method", "path", "who", "body"),
    [
        ("GET", "/v1/orders/{neighbours}", "senior", None),
        ("POST", "/v1/orders/{neighbours}/cancel", "senior", {"reason": "x"}),
        ("POST", "/v1/orders/{neighbours}/rating", "senior", {"score": 1}),
        ("GET", "/v1/ops/orders/{pending}", "operator_b", None),
        ("POST", "/v1/ops/orders/{pending}/cancel", "operator_b", {"reason": "x"}),
        ("POST", "/v1/ops/orders/{pending}/assign", "operator_b", {"caregiver_id": ZERO_UUID}),
        ("GET", "/v1/ops/seniors/{senior}", "operator_b", None),
        ("GET", "/v1/visits/{visit}", "helper", None),
        ("POST", "/v1/visits/{visit}/check-in", "helper", {"lat": HOME[0], "lon": HOME[1]}),
        ("POST", "/v1/visits/{visit}/withdraw", "other_caregiver", {"reason": "x"}),
        ("POST", "/v1/ops/visits/{visit}/check-in", "operator_b", {"reason": "x"}),
        ("POST", "/v1/ops/caregivers/{nurse}/shifts", "operator_b", None),
    ],
)
async def test_someone_elses_object_is_a_404(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    method: str,
    path: str,
    who: str,
    body: dict[str, Any] | None,
) -> None:
    if body is None and method == "POST":
        body = {"starts_at": at(_tomorrow(8)), "ends_at": at(_tomorrow(16))}
    await refused(
        http,
        sessionmaker,
        method,
        path.format(**scene.ids()),
        json=body,
        headers=scene.headers(who),
        status=404,
        code="not_found",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nowhere"),
        ("POST", "/v1/nowhere"),
        ("GET", "/v2/orders"),
        ("GET", "/nowhere"),  # "/" is the front door (the pages)
        ("GET", "/v1"),
        ("POST", "/v1/orders/{pending}/explode"),
        ("GET", "/v1/ops/orders/{pending}/history/1"),
        ("GET", "/v1/orders/{pending}/cancel/now"),
        ("DELETE", "/v1/admin/districts/lianhu/operators"),
        ("GET", "/v1/../etc/passwd"),
    ],
)
async def test_an_unknown_route_is_a_404(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, method: str, path: str
) -> None:
    await refused(
        http,
        sessionmaker,
        method,
        path.format(**scene.ids()),
        json={"reason": "x"} if method != "GET" else None,
        headers=scene.world.senior.auth,
        status=404,
        code="not_found",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/orders"),
        ("PATCH", "/v1/orders"),
        ("PUT", "/v1/orders/{pending}"),
        ("DELETE", "/v1/orders/{pending}"),
        ("GET", "/v1/orders/{pending}/cancel"),
        ("PUT", "/v1/orders/{pending}/rating"),
        ("GET", "/v1/sos"),
        ("POST", "/v1/caregivers/me/position"),
        ("DELETE", "/v1/ops/seniors"),
        ("PUT", "/v1/ops/orders/{pending}/assign"),
        ("DELETE", "/v1/admin/districts/{district_b}"),
        ("GET", "/v1/auth/token"),
        ("POST", "/healthz"),
        ("DELETE", "/readyz"),
    ],
)
async def test_a_wrong_method_is_a_405_with_allow(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, method: str, path: str
) -> None:
    await refused(
        http,
        sessionmaker,
        method,
        path.format(**scene.ids()),
        json={"reason": "x"} if method != "GET" else None,
        headers=scene.world.senior.auth,
        status=405,
        code="method_not_allowed",
    )


# --------------------------------------------------------------------------------------------
# Authentication and roles
# --------------------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_auth(kind: str, world: World, settings: Settings) -> dict[str, str]:
    if kind == "none":
        return {}
    if kind == "garbage":
        return {"Authorization": "Bearer garbage"}
    if kind == "empty-bearer":
        return {"Authorization": "Bearer "}
    if kind == "basic":
        return {"Authorization": "Basic " + base64.b64encode(b"13900000001:x").decode()}
    if kind == "expired":
        token, _ = create_access_token(
            settings,
            account_id=world.senior.id,
            role=Role.senior,
            now=datetime.now(UTC) - timedelta(days=1),
        )
        return {"Authorization": f"Bearer {token}"}
    if kind == "wrong-secret":
        other = Settings(env="test", database_url=settings.database_url, jwt_secret="x" * 48)
        token, _ = create_access_token(other, account_id=world.senior.id, role=Role.senior)
        return {"Authorization": f"Bearer {token}"}
    if kind == "alg-none":
        now = int(datetime.now(UTC).timestamp())
        claims = {
            "sub": str(world.senior.id),
            "role": "senior",
            "aud": settings.jwt_audience,
            "iss": settings.jwt_issuer,
            "iat": now,
            "exp": now + 600,
        }
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
        return {"Authorization": f"Bearer {token}"}
    if kind == "unknown-account":
        token, _ = create_access_token(settings, account_id=uuid.uuid4(), role=Role.senior)
        return {"Authorization": f"Bearer {token}"}
    if kind == "role-mismatch":  # the senior's id with an operator's role claim
        token, _ = create_access_token(settings, account_id=world.senior.id, role=Role.operator)
        return {"Authorization": f"Bearer {token}"}
    if kind == "bad-api-key":
        return {"X-API-Key": "dsk_not-a-real-key"}
    raise AssertionError(kind)


BAD_AUTH = [
    ("none", "not_authenticated"),
    ("garbage", "invalid_token"),
    ("empty-bearer", None),
    ("basic", "not_authenticated"),
    ("expired", "token_expired"),
    ("wrong-secret", "invalid_token"),
    ("alg-none", "invalid_token"),
    ("unknown-account", "invalid_token"),
    ("role-mismatch", "invalid_token"),
    ("bad-api-key", "invalid_api_key"),
]


@pytest.mark.parametrize(("kind", "code"), BAD_AUTH, ids=[k for k, _ in BAD_AUTH])
@pytest.mark.parametrize("name", ["order", "senior", "position", "cancel", "assign"])
async def test_a_write_without_valid_credentials_is_a_401(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    settings: Settings,
    kind: str,
    code: str | None,
    name: str,
) -> None:
    ep = BODIES[name]
    await refused(
        http,
        sessionmaker,
        ep.method,
        ep.url(scene),
        json=ep.body(scene),
        headers=_bad_auth(kind, scene.world, settings),
        status=401,
        code=code,
    )


@pytest.mark.parametrize(
    ("name", "who"),
    [
        ("order", "nurse"),
        ("order", "operator_a"),
        ("order", "provider"),
        ("order", "admin"),
        ("senior", "senior"),
        ("senior", "nurse"),
        ("senior", "admin"),
        ("caregiver", "provider"),
        ("assign", "senior"),
        ("assign", "nurse"),
        ("position", "senior"),
        ("position", "operator_a"),
        ("check_in", "senior"),
        ("rating", "operator_a"),
        ("cancel", "nurse"),
        ("district", "operator_a"),
        ("operator", "operator_a"),
    ],
)
async def test_a_write_by_the_wrong_role_is_a_403(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, name: str, who: str
) -> None:
    ep = BODIES[name]
    await refused(
        http,
        sessionmaker,
        ep.method,
        ep.url(scene),
        json=ep.body(scene),
        headers=scene.headers(who),
        status=403,
        code="wrong_role",
    )


@pytest.mark.parametrize(
    "form",
    [
        {"username": "13900000001", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "", "password": PASSWORD},
    ],
    ids=["wrong-password", "unknown-login", "empty-login"],
)
async def test_a_bad_login_is_a_401_or_422(
    http: AsyncClient, world: World, form: dict[str, str]
) -> None:
    r = await http.post("/v1/auth/token", data=form)
    assert r.status_code in (401, 422), r.text
    assert_problem(r, r.status_code)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"data": {"username": "13900000001"}}, "password"),
        ({"data": {"password": PASSWORD}}, "username"),
        ({"json": {"username": "13900000001", "password": PASSWORD}}, "username"),
        ({}, "username"),
    ],
    ids=["no-password", "no-username", "json-instead-of-form", "no-body"],
)
async def test_a_malformed_login_is_a_422(
    http: AsyncClient, world: World, kwargs: dict[str, Any], field: str
) -> None:
    r = await http.post("/v1/auth/token", **kwargs)
    assert_problem(r, 422, "validation_error", mentions=(field,))


# --------------------------------------------------------------------------------------------
# Ratings and cancellations: range, state
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0, 6, -1, 100])
async def test_a_rating_out_of_range_is_a_422_and_nothing_is_rated(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, score: int
) -> None:
    await refused_body(
        http, sessionmaker, scene, "rating", json={"score": score}, mentions=("score",)
    )


@pytest.mark.parametrize("order", ["pending", "assigned", "cancelled"])
async def test_rating_an_order_that_is_not_completed_is_a_409(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, order: str
) -> None:
    await refused(
        http,
        sessionmaker,
        "POST",
        f"/v1/orders/{scene.ids()[order]}/rating",
        json={"score": 5},
        headers=scene.world.senior.auth,
        status=409,
        code="not_completed",
    )


@pytest.mark.fresh
async def test_rating_twice_is_a_409_and_the_first_rating_stands(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    r = await send(http, scene, "rating", {"score": 4, "comment": "Good"})
    assert r.status_code == 200, r.text
    await refused_body(
        http,
        sessionmaker,
        scene,
        "rating",
        json={"score": 1, "comment": "Changed my mind"},
        status=409,
        code="already_rated",
    )
    r = await http.get(f"/v1/orders/{scene.completed}", headers=scene.world.senior.auth)
    assert (r.json()["rating"], r.json()["rating_comment"]) == (4, "Good")


@pytest.mark.parametrize(
    ("order", "who", "path", "status"),
    [
        ("cancelled", "senior", "/v1/orders/{id}/cancel", "cancelled"),
        ("completed", "senior", "/v1/orders/{id}/cancel", "completed"),
        ("cancelled", "operator_a", "/v1/ops/orders/{id}/cancel", "cancelled"),
        ("completed", "operator_a", "/v1/ops/orders/{id}/cancel", "completed"),
    ],
)
async def test_cancelling_a_finished_order_is_a_409_illegal_transition(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    order: str,
    who: str,
    path: str,
    status: str,
) -> None:
    body = await refused(
        http,
        sessionmaker,
        "POST",
        path.format(id=scene.ids()[order]),
        json={"reason": "again"},
        headers=scene.headers(who),
        status=409,
        code="illegal_transition",
        mentions=(status,),
    )
    assert body["order_status"] == status


@pytest.mark.fresh
async def test_cancelling_twice_keeps_the_first_reason(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    await refused(
        http,
        sessionmaker,
        "POST",
        f"/v1/orders/{scene.cancelled}/cancel",
        json={"reason": "Second thoughts"},
        headers=scene.world.senior.auth,
        status=409,
        code="illegal_transition",
    )
    r = await http.get(f"/v1/orders/{scene.cancelled}", headers=scene.world.senior.auth)
    assert r.json()["cancel_reason"] == "Family came"


@pytest.mark.parametrize(
    ("order", "body", "status", "code"),
    [
        ("cancelled", {"caregiver_id": "{helper}"}, 409, "illegal_transition"),
        ("completed", {"caregiver_id": "{helper}"}, 409, "illegal_transition"),
        ("pending", {"caregiver_id": ZERO_UUID}, 422, "unknown_caregiver"),
        ("pending", {"caregiver_id": "{other_caregiver}"}, 422, "unknown_caregiver"),
        ("pending", {"caregiver_id": "{senior}"}, 422, "unknown_caregiver"),
    ],
)
async def test_a_bad_assignment_is_refused_and_nothing_is_booked(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    order: str,
    body: dict[str, str],
    status: int,
    code: str,
) -> None:
    ids = {**scene.ids(), "other_caregiver": str(scene.world.other_caregiver.id)}
    await refused(
        http,
        sessionmaker,
        "POST",
        f"/v1/ops/orders/{ids[order]}/assign",
        json={k: v.format(**ids) for k, v in body.items()},
        headers=scene.world.operator_a.auth,
        status=status,
        code=code,
    )


# --------------------------------------------------------------------------------------------
# Idempotency-Key on POST /v1/orders
# --------------------------------------------------------------------------------------------


@pytest.mark.fresh("bare")
async def test_same_key_and_body_replays_the_first_order(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World
) -> None:
    headers = {**world.senior.auth, "Idempotency-Key": "order-2026-11-24-bath"}
    body = {"service_code": "bathing", "notes": "Shower chair"}
    first = await http.post("/v1/orders", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    after_first = await snapshot(sessionmaker)

    again = await http.post("/v1/orders", json=body, headers=headers)
    # The same JSON written differently (key order, spacing, an explicit default) is the same body.
    spelled = await http.post(
        "/v1/orders",
        content=b'{ "notes" : "Shower chair", "priority": "normal", "service_code":"bathing" }',
        headers={**headers, "Content-Type": "application/json"},
    )

    for r in (again, spelled):
        assert r.status_code == 201, r.text
        assert r.headers.get("idempotent-replayed") == "true"
        assert r.json() == first.json()
    assert await snapshot(sessionmaker) == after_first
    assert after_first["counts"]["care_order"] == 1
    assert after_first["counts"]["idempotency_key"] == 1


@pytest.mark.fresh("bare")
async def test_same_key_with_a_different_body_is_a_422_and_nothing_is_created(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World
) -> None:
    headers = {**world.senior.auth, "Idempotency-Key": "k-1"}
    first = await http.post("/v1/orders", json={"service_code": "bathing"}, headers=headers)
    assert first.status_code == 201, first.text
    for other in ({"service_code": "cleaning"}, {"service_code": "bathing", "notes": "x"}):
        await refused(
            http,
            sessionmaker,
            "POST",
            "/v1/orders",
            json=other,
            headers=headers,
            status=422,
            code="idempotency_key_reused",
            mentions=("Idempotency-Key",),
        )
    assert await count(sessionmaker, Order) == 1


@pytest.mark.parametrize("key", ["x" * 256, "x" * 10_000, ""], ids=["256", "10000", "empty"])
async def test_a_bad_idempotency_key_is_a_422_and_nothing_is_created(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World, key: str
) -> None:
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/orders",
        json={"service_code": "bathing"},
        headers={**world.senior.auth, "Idempotency-Key": key},
        status=422,
        code="validation_error",
        mentions=("Idempotency-Key",),
    )


@pytest.mark.fresh("bare")
async def test_a_key_of_255_characters_is_accepted(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World
) -> None:
    headers = {**world.senior.auth, "Idempotency-Key": "k" * 255}
    first = await http.post("/v1/orders", json={"service_code": "bathing"}, headers=headers)
    again = await http.post("/v1/orders", json={"service_code": "bathing"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert first.json()["id"] == again.json()["id"]
    assert await count(sessionmaker, Order) == 1


@pytest.mark.fresh("bare")
async def test_keys_belong_to_the_account_that_used_them(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World
) -> None:
    body = {"service_code": "meal_delivery"}
    a = await http.post(
        "/v1/orders", json=body, headers={**world.senior.auth, "Idempotency-Key": "shared"}
    )
    b = await http.post(
        "/v1/orders", json=body, headers={**world.neighbour.auth, "Idempotency-Key": "shared"}
    )
    assert (a.status_code, b.status_code) == (201, 201), b.text
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers
    # And a different body under the same key is fine for the other account too.
    c = await http.post(
        "/v1/orders",
        json={"service_code": "cleaning"},
        headers={**world.far_senior.auth, "Idempotency-Key": "shared"},
    )
    assert c.status_code == 201, c.text
    assert await count(sessionmaker, Order) == 3
    async with sessionmaker() as s:
        owners = set((await s.scalars(select(Order.senior_id))).all())
    assert owners == {world.senior.id, world.neighbour.id, world.far_senior.id}


@pytest.mark.fresh("bare")
async def test_a_refused_request_does_not_use_up_its_key(
    http: AsyncClient, sessionmaker: Sessionmaker, world: World
) -> None:
    headers = {**world.senior.auth, "Idempotency-Key": "retry-me"}
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/orders",
        json={"service_code": "spa_day"},
        headers=headers,
        status=422,
        code="unknown_service",
    )
    past = {"service_code": "bathing", "window_start": at(_in(-5)), "window_end": at(_in(-3))}
    await refused(
        http,
        sessionmaker,
        "POST",
        "/v1/orders",
        json=past,
        headers=headers,
        status=422,
        code="window_in_past",
    )
    r = await http.post("/v1/orders", json={"service_code": "bathing"}, headers=headers)
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert await count(sessionmaker, Order) == 1


# --------------------------------------------------------------------------------------------
# Registration: duplicates and references
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["13900000001", "13700000001", " 13900000002 "],
    ids=["a-seniors-phone", "a-caregivers-phone", "padded"],
)
async def test_registering_a_senior_with_a_taken_phone_is_a_409(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, phone: str
) -> None:
    body = {**senior_body(scene), "phone": phone}
    await refused_body(
        http, sessionmaker, scene, "senior", json=body, status=409, code="login_taken"
    )


@pytest.mark.parametrize(
    "phone",
    ["13700000001", "13900000001", "13700000003"],
    ids=["a-caregivers-phone", "a-seniors-phone", "other-districts-caregiver"],
)
async def test_registering_a_caregiver_with_a_taken_phone_is_a_409(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, phone: str
) -> None:
    body = {**caregiver_body(scene), "phone": phone}
    await refused_body(
        http, sessionmaker, scene, "caregiver", json=body, status=409, code="login_taken"
    )


@pytest.mark.fresh
async def test_registering_the_same_senior_twice_creates_one(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    r = await send(http, scene, "senior", senior_body(scene))
    assert r.status_code == 201, r.text
    await refused_body(
        http,
        sessionmaker,
        scene,
        "senior",
        json=senior_body(scene),
        status=409,
        code="login_taken",
    )


@pytest.mark.parametrize(
    ("name", "body", "status", "code"),
    [
        ("provider", {"login": "prov.a", "name": "Again"}, 409, "login_taken"),
        ("provider", {"login": "13900000001", "name": "A senior's phone"}, 409, "login_taken"),
        ("district", {"code": "lianhu", "name": "Again", "city": "Xi'an"}, 409, "already_exists"),
        ("operator", {"login": "op.b", "password": PASSWORD, "name": "B"}, 409, "login_taken"),
        ("operator", {"login": "op.new", "password": PASSWORD, "name": "N"}, 422, None),
    ],
    ids=[
        "provider-login",
        "provider-login-is-a-phone",
        "district-code",
        "operator-login",
        "operator-in-unknown-district",
    ],
)
async def test_registering_a_taken_name_is_a_409(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    name: str,
    body: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    if name == "operator":
        body = {**body, "district_id": str(scene.world.district_a)}
        if status == 422:  # an unknown district, for contrast
            body["district_id"] = ZERO_UUID
            code = "unknown_district"
    await refused_body(http, sessionmaker, scene, name, json=body, status=status, code=code)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("preferred_caregivers", ["{other_caregiver}"], "unknown_caregiver"),
        ("blocked_caregivers", [ZERO_UUID], "unknown_caregiver"),
        ("preferred_caregivers", ["{senior}"], "unknown_caregiver"),
    ],
)
async def test_a_senior_preferring_an_unknown_caregiver_is_a_422(
    http: AsyncClient,
    sessionmaker: Sessionmaker,
    scene: Scene,
    field: str,
    value: list[str],
    code: str,
) -> None:
    ids = {**scene.ids(), "other_caregiver": str(scene.world.other_caregiver.id)}
    body = {**senior_body(scene), field: [v.format(**ids) for v in value]}
    await refused_body(http, sessionmaker, scene, "senior", json=body, code=code)


async def test_a_caregiver_both_preferred_and_blocked_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    nurse = str(scene.world.nurse.id)
    body = {**senior_body(scene), "preferred_caregivers": [nurse], "blocked_caregivers": [nurse]}
    await refused_body(
        http, sessionmaker, scene, "senior", json=body, mentions=("preferred", "blocked")
    )


@pytest.mark.fresh
@pytest.mark.parametrize("field", ["preferred_caregivers", "blocked_caregivers"])
async def test_a_caregiver_listed_twice_is_not_a_phone_number_conflict(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene, field: str
) -> None:
    """The same caregiver twice in one list is either taken once (201) or refused as a 422 about
    that list; it is not "The phone number is already registered"."""
    nurse = str(scene.world.nurse.id)
    body = {**senior_body(scene), field: [nurse, nurse]}
    before = await snapshot(sessionmaker)
    r = await send(http, scene, "senior", body)
    if r.status_code == 201:
        assert r.json()[field] == [nurse]
    else:
        assert_problem(r, 422, mentions=(field,))
        assert await snapshot(sessionmaker) == before


async def test_a_caregiver_for_another_districts_provider_is_a_422(
    http: AsyncClient, sessionmaker: Sessionmaker, scene: Scene
) -> None:
    async with sessionmaker() as s:
        other = await s.scalar(
            select(Provider.id).where(Provider.district_id == scene.world.district_b)
        )
    body = {**caregiver_body(scene), "provider_id": str(other)}
    await refused_body(http, sessionmaker, scene, "caregiver", json=body, code="unknown_provider")
