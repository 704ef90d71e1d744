"""Object-level authorization and the privacy of seniors (DESIGN.md invariant 6).

A senior sees only their own data; a caregiver sees a senior's address, phone and care notes only
while assigned to that order; a provider never sees them; an operator sees their own district.
Objects a caller may not see are 404 (never 403: their existence is not confirmed), a wrong role
is 403, and every read of personal data leaves exactly one audit row.
"""

import re
import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models import AuditLog
from tests.conftest import JWT_SECRET
from tests.factories import NEAR_HOME, PASSWORD, World, ready
from tests.test_auth import assert_problem

SENIOR_ADDRESS = "Room 001, 118 Laodong Road"  # tests.factories.senior_in("13900000001")
CARE_NOTES = "Type 2 diabetes; uses a walker."


def headers(world: World, who: str) -> dict[str, str]:
    if who == "provider_a":
        return world.provider_a_headers
    if who == "provider_b":
        return {"X-API-Key": world.provider_b_key}
    return getattr(world, who).auth  # type: ignore[no-any-return]


async def place(
    client: AsyncClient, world: World, who: str = "senior", service_code: str = "bathing"
) -> dict[str, Any]:
    r = await client.post(
        "/v1/orders", json={"service_code": service_code}, headers=headers(world, who)
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def assign(
    client: AsyncClient,
    world: World,
    order_id: str,
    caregiver_id: uuid.UUID,
    operator: str = "operator_a",
) -> dict[str, Any]:
    """The operator assigns a caregiver who is on duty near the senior (``ready``)."""
    await ready(client, world.caregiver(caregiver_id))
    r = await client.post(
        f"/v1/ops/orders/{order_id}/assign",
        json={"caregiver_id": str(caregiver_id)},
        headers=headers(world, operator),
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def visit_of(client: AsyncClient, world: World, who: str, order_id: str) -> dict[str, Any]:
    """The caller's (caregiver's) newest visit for the order, from their list."""
    r = await client.get("/v1/visits?limit=100", headers=headers(world, who))
    assert r.status_code == 200, r.text
    mine = [v for v in r.json()["items"] if v["order_id"] == order_id]
    assert mine, r.json()
    return mine[0]  # type: ignore[no-any-return]


async def check_in(client: AsyncClient, world: World, who: str, visit_id: str) -> Response:
    return await client.post(
        f"/v1/visits/{visit_id}/check-in",
        json={"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]},
        headers=headers(world, who),
    )


async def assigned_visit(
    client: AsyncClient, world: World, senior: str = "senior", service_code: str = "bathing"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An order of ``senior`` assigned to the nurse, and the nurse's visit for it."""
    order = await place(client, world, senior, service_code)
    await assign(client, world, order["id"], world.nurse.id)
    return order, await visit_of(client, world, "nurse", order["id"])


async def completed_visit(
    client: AsyncClient, world: World, senior: str = "senior"
) -> tuple[dict[str, Any], dict[str, Any]]:
    order, visit = await assigned_visit(client, world, senior)
    assert (await check_in(client, world, "nurse", visit["id"])).status_code == 200
    r = await client.post(
        f"/v1/visits/{visit['id']}/check-out", json={"notes": "done"}, headers=world.nurse.auth
    )
    assert r.status_code == 200, r.text
    return order, visit


async def audit_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[AuditLog]:
    async with sessionmaker() as session:
        return list((await session.execute(select(AuditLog).order_by(AuditLog.id))).scalars())


def assert_contact_of_senior(contact: dict[str, Any] | None) -> None:
    assert contact is not None
    assert contact["address"] == SENIOR_ADDRESS
    assert contact["phone"] == "+8613900000001"
    assert contact["care_notes"] == CARE_NOTES


# The two ways in: an app's token and a page's cookie session; and what an app does with the
# refresh token its log-in gave it (the refresh token is the credential there).
LOG_INS = {
    ("post", "/v1/auth/token"),
    ("post", "/v1/auth/session"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
}


def _v1_routes() -> list[tuple[str, str]]:
    """Every operation the API publishes under /v1, from its own OpenAPI document."""
    application = create_app(
        Settings(env="test", jwt_secret=JWT_SECRET, _env_file=None)  # type: ignore[call-arg]
    )
    return sorted(
        (method.upper(), path)
        for path, operations in application.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if (method, path) not in LOG_INS
    )


V1_ROUTES = _v1_routes()


class TestAnonymous:
    def test_the_sweep_sees_every_router(self) -> None:
        prefixes = {re.sub(r"^/v1/([^/]+).*$", r"\1", path) for _, path in V1_ROUTES}
        assert {"auth", "orders", "seniors", "visits", "caregivers", "ops", "provider"} <= prefixes
        assert {"admin", "services", "sos"} <= prefixes
        assert len(V1_ROUTES) >= 25

    @pytest.mark.parametrize(("method", "path"), V1_ROUTES)
    async def test_every_v1_route_but_login_needs_credentials(
        self, client: AsyncClient, world: World, method: str, path: str
    ) -> None:
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)

        r = await client.request(method, url)

        assert_problem(r, 401, "not_authenticated")


WRONG_ROLE = [
    # seniors router
    ("nurse", "POST", "/v1/orders", {"service_code": "bathing"}),
    ("provider_a", "POST", "/v1/orders", {"service_code": "bathing"}),
    ("operator_a", "POST", "/v1/orders", {"service_code": "bathing"}),
    ("admin", "POST", "/v1/orders", {"service_code": "bathing"}),
    ("provider_a", "GET", "/v1/orders", None),
    ("nurse", "GET", "/v1/orders", None),
    ("operator_a", "GET", "/v1/orders/{order}", None),
    ("nurse", "POST", "/v1/orders/{order}/cancel", {"reason": "x"}),
    ("operator_a", "POST", "/v1/orders/{order}/rating", {"score": 1}),
    ("nurse", "POST", "/v1/sos", None),
    ("operator_a", "GET", "/v1/seniors/me", None),
    ("nurse", "GET", "/v1/seniors/me", None),
    ("provider_a", "GET", "/v1/seniors/me", None),
    # ops router
    ("senior", "GET", "/v1/ops/queue", None),
    ("nurse", "GET", "/v1/ops/queue", None),
    ("provider_a", "GET", "/v1/ops/queue", None),
    ("admin", "GET", "/v1/ops/queue", None),
    ("senior", "GET", "/v1/ops/orders/{order}", None),
    ("nurse", "GET", "/v1/ops/orders/{order}", None),
    ("nurse", "POST", "/v1/ops/orders/{order}/assign", {"caregiver_id": "{nurse}"}),
    ("senior", "POST", "/v1/ops/orders/{order}/cancel", {"reason": "x"}),
    ("senior", "GET", "/v1/ops/seniors", None),
    ("nurse", "GET", "/v1/ops/seniors/{senior}", None),
    ("provider_a", "GET", "/v1/ops/seniors/{senior}", None),
    ("provider_a", "GET", "/v1/ops/caregivers", None),
    ("nurse", "POST", "/v1/ops/visits/{random}/check-in", {"reason": "x"}),
    # caregivers router
    ("operator_a", "GET", "/v1/caregivers/me", None),
    ("senior", "GET", "/v1/caregivers/me", None),
    ("senior", "PUT", "/v1/caregivers/me/duty", {"on_duty": True}),
    ("operator_a", "PUT", "/v1/caregivers/me/position", {"lat": 34.0, "lon": 108.0}),
    ("operator_a", "GET", "/v1/visits", None),
    ("provider_a", "GET", "/v1/visits", None),
    ("senior", "GET", "/v1/visits/{random}", None),
    ("operator_a", "POST", "/v1/visits/{random}/check-in", {"lat": 34.0, "lon": 108.0}),
    ("senior", "POST", "/v1/visits/{random}/withdraw", {"reason": "x"}),
    # providers router
    ("nurse", "GET", "/v1/provider/caregivers", None),
    ("operator_a", "GET", "/v1/provider/visits", None),
    ("senior", "GET", "/v1/provider/visits/{random}", None),
    # admin router
    ("senior", "GET", "/v1/admin/districts", None),
    ("operator_a", "GET", "/v1/admin/districts", None),
    ("provider_a", "GET", "/v1/admin/districts", None),
    ("operator_a", "POST", "/v1/admin/districts", {"code": "yanta", "name": "Y", "city": "X"}),
]


class TestWrongRole:
    @pytest.mark.parametrize(("who", "method", "path", "body"), WRONG_ROLE)
    async def test_wrong_role_is_403(
        self,
        client: AsyncClient,
        world: World,
        who: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> None:
        order = await place(client, world)
        values = {
            "order": order["id"],
            "senior": str(world.senior.id),
            "nurse": str(world.nurse.id),
            "random": str(uuid.uuid4()),
        }
        url = path.format(**values)
        if body is not None:
            body = {k: v.format(**values) if isinstance(v, str) else v for k, v in body.items()}

        r = await client.request(method, url, json=body, headers=headers(world, who))

        assert_problem(r, 403, "wrong_role")

    async def test_a_refused_write_changes_nothing(self, client: AsyncClient, world: World) -> None:
        r = await client.post(
            "/v1/admin/districts",
            json={"code": "yanta", "name": "Yanta", "city": "Xi'an"},
            headers=world.operator_a.auth,
        )
        assert_problem(r, 403, "wrong_role")
        r = await client.post(
            "/v1/orders", json={"service_code": "bathing"}, headers=world.nurse.auth
        )
        assert_problem(r, 403, "wrong_role")

        r = await client.get("/v1/admin/districts", headers=world.admin.auth)
        assert r.status_code == 200
        assert {d["code"] for d in r.json()} == {"lianhu", "beilin"}
        r = await client.get("/v1/ops/queue", headers=world.operator_a.auth)
        assert r.json()["items"] == []

    async def test_the_right_roles_get_in(self, client: AsyncClient, world: World) -> None:
        for who, path in (
            ("admin", "/v1/admin/districts"),
            ("operator_a", "/v1/ops/queue"),
            ("nurse", "/v1/caregivers/me"),
            ("senior", "/v1/orders"),
            ("provider_a", "/v1/provider/visits"),
        ):
            r = await client.get(path, headers=headers(world, who))
            assert r.status_code == 200, (who, path, r.text)


class TestSeniorOwnOrders:
    async def test_another_senior_s_order_is_not_found(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world, "senior")
        unknown = str(uuid.uuid4())

        theirs = await client.get(f"/v1/orders/{order['id']}", headers=world.neighbour.auth)
        nothing = await client.get(f"/v1/orders/{unknown}", headers=world.neighbour.auth)

        # Same answer as for an order that does not exist: no oracle for valid ids.
        assert assert_problem(theirs, 404, "not_found") == assert_problem(nothing, 404, "not_found")
        r = await client.get(f"/v1/orders/{order['id']}", headers=world.far_senior.auth)
        assert_problem(r, 404, "not_found")

    async def test_cannot_cancel_another_senior_s_order(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world, "senior")

        r = await client.post(
            f"/v1/orders/{order['id']}/cancel",
            json={"reason": "prank"},
            headers=world.neighbour.auth,
        )

        assert_problem(r, 404, "not_found")
        r = await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)
        assert r.json()["status"] == "pending"
        assert r.json()["cancel_reason"] is None

    async def test_cannot_rate_another_senior_s_completed_order(
        self, client: AsyncClient, world: World
    ) -> None:
        order, _ = await completed_visit(client, world, "senior")

        r = await client.post(
            f"/v1/orders/{order['id']}/rating",
            json={"score": 1, "comment": "sabotage"},
            headers=world.neighbour.auth,
        )

        assert_problem(r, 404, "not_found")
        r = await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)
        assert r.json()["status"] == "completed"
        assert r.json()["rating"] is None
        r = await client.get("/v1/caregivers/me", headers=world.nurse.auth)
        assert r.json()["rating"] is None
        # The owner still can.
        r = await client.post(
            f"/v1/orders/{order['id']}/rating", json={"score": 5}, headers=world.senior.auth
        )
        assert r.status_code == 200

    async def test_the_list_holds_only_my_orders(self, client: AsyncClient, world: World) -> None:
        mine = await place(client, world, "senior")
        await place(client, world, "neighbour")
        await place(client, world, "far_senior")

        r = await client.get("/v1/orders", headers=world.senior.auth)

        assert [o["id"] for o in r.json()["items"]] == [mine["id"]]

    async def test_cannot_place_an_order_for_someone_else(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.post(
            "/v1/orders",
            json={"service_code": "bathing", "senior_id": str(world.neighbour.id)},
            headers=world.senior.auth,
        )

        assert_problem(r, 422, "validation_error")
        r = await client.get("/v1/orders", headers=world.neighbour.auth)
        assert r.json()["items"] == []

    async def test_an_idempotency_key_never_replays_another_senior_s_order(
        self, client: AsyncClient, world: World
    ) -> None:
        key = {"Idempotency-Key": "same-key-on-two-phones"}
        body = {"service_code": "meal_delivery", "notes": "Ring twice"}
        r = await client.post("/v1/orders", json=body, headers={**world.senior.auth, **key})
        first = r.json()

        r = await client.post("/v1/orders", json=body, headers={**world.neighbour.auth, **key})

        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
        assert r.json()["id"] != first["id"]
        r = await client.get(f"/v1/orders/{r.json()['id']}", headers=world.neighbour.auth)
        assert r.status_code == 200

    async def test_sos_never_returns_another_senior_s_emergency(
        self, client: AsyncClient, world: World
    ) -> None:
        theirs = (await client.post("/v1/sos", headers=world.senior.auth)).json()

        r = await client.post("/v1/sos", headers=world.neighbour.auth)

        assert r.status_code == 201
        assert r.json()["id"] != theirs["id"]

    async def test_seniors_me_is_my_own_profile(self, client: AsyncClient, world: World) -> None:
        r = await client.get("/v1/seniors/me", headers=world.neighbour.auth)

        assert r.status_code == 200
        assert r.json()["id"] == str(world.neighbour.id)
        assert r.json()["phone"] == "+8613900000002"


class TestOperatorDistrict:
    async def test_another_district_s_order_is_not_found(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world, "senior")

        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_b.auth)

        assert_problem(r, 404, "not_found")
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        assert r.status_code == 200

    async def test_another_district_s_senior_is_not_found(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.get(f"/v1/ops/seniors/{world.senior.id}", headers=world.operator_b.auth)

        assert_problem(r, 404, "not_found")
        r = await client.get(
            f"/v1/ops/seniors/{world.far_senior.id}", headers=world.operator_a.auth
        )
        assert_problem(r, 404, "not_found")

    async def test_cannot_act_on_another_district_s_order(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world, "senior")
        pending = await place(client, world, "neighbour")
        await assign(client, world, order["id"], world.nurse.id)

        for path, body in (
            (f"/v1/ops/orders/{pending['id']}/assign", {"caregiver_id": str(world.nurse.id)}),
            (
                f"/v1/ops/orders/{pending['id']}/assign",
                {"caregiver_id": str(world.other_caregiver.id)},
            ),
            (
                f"/v1/ops/orders/{order['id']}/reassign",
                {"caregiver_id": str(world.other_caregiver.id)},
            ),
            (f"/v1/ops/orders/{order['id']}/cancel", {"reason": "not mine"}),
        ):
            r = await client.post(path, json=body, headers=world.operator_b.auth)
            assert_problem(r, 404, "not_found")

        r = await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)
        assert r.json()["status"] == "assigned"
        assert r.json()["caregiver_id"] == str(world.nurse.id)
        r = await client.get(f"/v1/orders/{pending['id']}", headers=world.neighbour.auth)
        assert r.json()["status"] == "pending"

    async def test_cannot_assign_a_caregiver_of_another_district(
        self, client: AsyncClient, world: World
    ) -> None:
        order = await place(client, world, "senior")

        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.other_caregiver.id)},
            headers=world.operator_a.auth,
        )

        assert r.status_code in (404, 422)
        assert_problem(r, r.status_code)
        r = await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)
        assert r.json()["status"] == "pending"
        assert r.json()["caregiver_id"] is None
        r = await client.get("/v1/visits", headers=world.other_caregiver.auth)
        assert r.json()["items"] == []

    async def test_cannot_reassign_to_a_caregiver_of_another_district(
        self, client: AsyncClient, world: World
    ) -> None:
        order, _ = await assigned_visit(client, world)

        r = await client.post(
            f"/v1/ops/orders/{order['id']}/reassign",
            json={"caregiver_id": str(world.other_caregiver.id)},
            headers=world.operator_a.auth,
        )

        assert r.status_code in (404, 422)
        assert_problem(r, r.status_code)
        r = await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)
        assert r.json()["caregiver_id"] == str(world.nurse.id)

    async def test_the_queue_is_my_district_only(self, client: AsyncClient, world: World) -> None:
        a = await place(client, world, "senior")
        b = await place(client, world, "far_senior")

        r = await client.get("/v1/ops/queue?limit=100", headers=world.operator_b.auth)
        assert [o["id"] for o in r.json()["items"]] == [b["id"]]
        r = await client.get("/v1/ops/queue?limit=100", headers=world.operator_a.auth)
        assert [o["id"] for o in r.json()["items"]] == [a["id"]]

    async def test_seniors_and_caregivers_lists_are_my_district_only(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.get("/v1/ops/seniors?limit=100", headers=world.operator_b.auth)
        assert {s["id"] for s in r.json()["items"]} == {str(world.far_senior.id)}
        r = await client.get("/v1/ops/seniors?q=Neighbour", headers=world.operator_b.auth)
        assert r.json()["items"] == []
        r = await client.get("/v1/ops/caregivers?limit=100", headers=world.operator_b.auth)
        assert {c["id"] for c in r.json()["items"]} == {str(world.other_caregiver.id)}

    async def test_cannot_manage_another_district_s_caregivers_and_visits(
        self, client: AsyncClient, world: World
    ) -> None:
        _, visit = await assigned_visit(client, world)

        r = await client.post(
            f"/v1/ops/visits/{visit['id']}/check-in",
            json={"reason": "trust me"},
            headers=world.operator_b.auth,
        )
        assert_problem(r, 404, "not_found")
        r = await client.post(
            f"/v1/ops/caregivers/{world.nurse.id}/shifts",
            json={"starts_at": "2099-01-01T08:00:00+08:00", "ends_at": "2099-01-01T16:00:00+08:00"},
            headers=world.operator_b.auth,
        )
        assert_problem(r, 404, "not_found")
        r = await client.post(
            "/v1/ops/caregivers",
            json={
                "provider_id": str(world.provider_a.id),
                "name": "Planted",
                "phone": "13700000099",
                "password": PASSWORD,
                "gender": "female",
            },
            headers=world.operator_b.auth,
        )
        assert r.status_code in (404, 422)
        assert_problem(r, r.status_code)
        r = await client.get("/v1/visits", headers=world.nurse.auth)
        assert [v["status"] for v in r.json()["items"]] == ["assigned"]

    async def test_cannot_register_a_senior_who_prefers_another_district_s_caregiver(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.post(
            "/v1/ops/seniors",
            json={
                "name": "Wang Fang",
                "phone": "13900000077",
                "password": PASSWORD,
                "address": "1 Nanguan Street",
                "neighbourhood": "Nanguan",
                "lat": 34.25,
                "lon": 108.95,
                "preferred_caregivers": [str(world.nurse.id)],
            },
            headers=world.operator_b.auth,
        )

        assert r.status_code in (404, 422)
        assert_problem(r, r.status_code)


class TestCaregiverVisits:
    async def test_another_caregiver_s_visit_is_not_found(
        self, client: AsyncClient, world: World
    ) -> None:
        _, visit = await assigned_visit(client, world)
        unknown = await client.get(f"/v1/visits/{uuid.uuid4()}", headers=world.helper.auth)

        for who in ("helper", "other_caregiver"):
            r = await client.get(f"/v1/visits/{visit['id']}", headers=headers(world, who))
            assert assert_problem(r, 404, "not_found") == unknown.json()
            r = await client.get("/v1/visits", headers=headers(world, who))
            assert r.json()["items"] == []

    async def test_cannot_act_on_another_caregiver_s_visit(
        self, client: AsyncClient, world: World
    ) -> None:
        _, visit = await assigned_visit(client, world)

        assert_problem(await check_in(client, world, "helper", visit["id"]), 404, "not_found")
        r = await client.post(
            f"/v1/visits/{visit['id']}/withdraw",
            json={"reason": "not mine"},
            headers=world.helper.auth,
        )
        assert_problem(r, 404, "not_found")
        assert (await check_in(client, world, "nurse", visit["id"])).status_code == 200
        r = await client.post(
            f"/v1/visits/{visit['id']}/check-out", json={}, headers=world.helper.auth
        )
        assert_problem(r, 404, "not_found")

        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)
        assert r.json()["status"] == "in_progress"


class TestProviderVisits:
    async def test_a_provider_sees_only_its_own_caregivers_visits(
        self, client: AsyncClient, world: World
    ) -> None:
        _, visit = await assigned_visit(client, world)
        far = await place(client, world, "far_senior")
        await assign(client, world, far["id"], world.other_caregiver.id, operator="operator_b")
        far_visit = await visit_of(client, world, "other_caregiver", far["id"])

        r = await client.get("/v1/provider/visits", headers=world.provider_a_headers)
        assert [v["id"] for v in r.json()["items"]] == [visit["id"]]
        r = await client.get(f"/v1/provider/visits/{visit['id']}", headers=world.provider_a_headers)
        assert r.status_code == 200
        r = await client.get(
            f"/v1/provider/visits/{far_visit['id']}", headers=world.provider_a_headers
        )
        assert_problem(r, 404, "not_found")

        b = headers(world, "provider_b")
        r = await client.get("/v1/provider/visits", headers=b)
        assert [v["id"] for v in r.json()["items"]] == [far_visit["id"]]
        r = await client.get(f"/v1/provider/visits/{visit['id']}", headers=b)
        assert_problem(r, 404, "not_found")

    async def test_a_provider_never_sees_the_senior_s_contact(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        _, visit = await assigned_visit(client, world)
        url = f"/v1/provider/visits/{visit['id']}"

        r = await client.get(url, headers=world.provider_a_headers)
        assert r.json()["senior"] is None
        assert SENIOR_ADDRESS not in r.text
        assert CARE_NOTES not in r.text
        assert (await check_in(client, world, "nurse", visit["id"])).status_code == 200
        before = len(await audit_rows(sessionmaker))
        r = await client.get(url, headers=world.provider_a_headers)
        assert r.json()["status"] == "in_progress"
        assert r.json()["senior"] is None
        r = await client.get("/v1/provider/visits", headers=world.provider_a_headers)
        assert all(v["senior"] is None for v in r.json()["items"])
        assert SENIOR_ADDRESS not in r.text
        assert len(await audit_rows(sessionmaker)) == before


class TestContactVisibility:
    async def test_visible_while_assigned_and_in_progress(
        self, client: AsyncClient, world: World
    ) -> None:
        _, visit = await assigned_visit(client, world)
        url = f"/v1/visits/{visit['id']}"

        r = await client.get(url, headers=world.nurse.auth)
        assert r.json()["status"] == "assigned"
        assert_contact_of_senior(r.json()["senior"])

        r = await check_in(client, world, "nurse", visit["id"])
        assert r.json()["status"] == "in_progress"
        assert_contact_of_senior(r.json()["senior"])
        r = await client.get(url, headers=world.nurse.auth)
        assert_contact_of_senior(r.json()["senior"])

    async def test_hidden_after_check_out(self, client: AsyncClient, world: World) -> None:
        _, visit = await assigned_visit(client, world)
        await check_in(client, world, "nurse", visit["id"])

        r = await client.post(
            f"/v1/visits/{visit['id']}/check-out", json={"notes": "ok"}, headers=world.nurse.auth
        )
        assert r.json()["status"] == "completed"
        assert r.json()["senior"] is None
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)

        assert r.json()["status"] == "completed"
        assert r.json()["senior"] is None
        assert SENIOR_ADDRESS not in r.text
        assert CARE_NOTES not in r.text

    async def test_hidden_after_withdrawal(self, client: AsyncClient, world: World) -> None:
        _, visit = await assigned_visit(client, world)

        r = await client.post(
            f"/v1/visits/{visit['id']}/withdraw",
            json={"reason": "car broke down"},
            headers=world.nurse.auth,
        )
        assert r.json()["status"] == "withdrawn"
        assert r.json()["senior"] is None
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)

        assert r.json()["senior"] is None
        assert SENIOR_ADDRESS not in r.text

    async def test_hidden_after_the_order_is_reassigned(
        self, client: AsyncClient, world: World
    ) -> None:
        order, visit = await assigned_visit(client, world, service_code="cleaning")
        await ready(client, world.helper)

        r = await client.post(
            f"/v1/ops/orders/{order['id']}/reassign",
            json={"caregiver_id": str(world.helper.id), "reason": "closer"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)

        assert r.json()["status"] == "reassigned"
        assert r.json()["senior"] is None
        assert SENIOR_ADDRESS not in r.text
        # The new caregiver is the one who sees it now.
        theirs = await visit_of(client, world, "helper", order["id"])
        r = await client.get(f"/v1/visits/{theirs['id']}", headers=world.helper.auth)
        assert_contact_of_senior(r.json()["senior"])

    async def test_hidden_after_the_order_is_cancelled(
        self, client: AsyncClient, world: World
    ) -> None:
        order, visit = await assigned_visit(client, world)

        await client.post(
            f"/v1/orders/{order['id']}/cancel",
            json={"reason": "in hospital"},
            headers=world.senior.auth,
        )
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)

        assert r.json()["status"] == "cancelled"
        assert r.json()["senior"] is None

    async def test_lists_never_carry_it(self, client: AsyncClient, world: World) -> None:
        _, assigned = await assigned_visit(client, world)
        started = await place(client, world, "neighbour", "meal_delivery")
        # The nurse's next hour is booked; the helper takes this one and starts it.
        await assign(client, world, started["id"], world.helper.id)
        helper_visit = await visit_of(client, world, "helper", started["id"])
        await check_in(client, world, "helper", helper_visit["id"])

        for who, status in (("nurse", "assigned"), ("helper", "in_progress")):
            for query in ("", f"?status={status}"):
                r = await client.get(f"/v1/visits{query}", headers=headers(world, who))
                items = r.json()["items"]
                assert [v["status"] for v in items] == [status]
                assert all(v["senior"] is None for v in items)
                assert "Laodong Road" not in r.text
                assert CARE_NOTES not in r.text
        assert assigned["senior"] is None  # as listed, before anyone opened it


class TestAudit:
    async def test_operator_reading_a_senior_profile(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        assert await audit_rows(sessionmaker) == []

        r = await client.get(f"/v1/ops/seniors/{world.senior.id}", headers=world.operator_a.auth)

        assert r.json()["address"] == SENIOR_ADDRESS
        [row] = await audit_rows(sessionmaker)
        assert row.actor_id == world.operator_a.id
        assert row.actor_role == "operator"
        assert row.senior_id == world.senior.id
        assert row.action == "senior.profile"
        assert "address" in row.fields
        assert "care_notes" in row.fields

    async def test_operator_reading_an_order_detail(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        order = await place(client, world, "neighbour")
        before = await audit_rows(sessionmaker)

        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)

        assert r.json()["senior"]["id"] == str(world.neighbour.id)
        assert r.json()["senior"]["care_notes"] == CARE_NOTES
        [row] = (await audit_rows(sessionmaker))[len(before) :]
        assert row.actor_id == world.operator_a.id
        assert row.senior_id == world.neighbour.id
        assert row.action == "order.detail"

    async def test_caregiver_reading_an_assigned_visit(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        _, visit = await assigned_visit(client, world)
        before = await audit_rows(sessionmaker)

        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)

        assert_contact_of_senior(r.json()["senior"])
        [row] = (await audit_rows(sessionmaker))[len(before) :]
        assert row.actor_id == world.nurse.id
        assert row.actor_role == "caregiver"
        assert row.senior_id == world.senior.id
        assert row.action == "visit.contact"
        assert row.object_id == visit["id"]

    async def test_senior_reading_their_own_profile(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        r = await client.get("/v1/seniors/me", headers=world.senior.auth)

        assert r.json()["care_notes"] == CARE_NOTES
        [row] = await audit_rows(sessionmaker)
        assert row.actor_id == world.senior.id
        assert row.actor_role == "senior"
        assert row.senior_id == world.senior.id
        assert row.action == "senior.self"

    async def test_each_read_is_one_row(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        for _ in range(3):
            await client.get(f"/v1/ops/seniors/{world.senior.id}", headers=world.operator_a.auth)

        assert len(await audit_rows(sessionmaker)) == 3

    async def test_lists_without_personal_data_write_none(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        _, visit = await assigned_visit(client, world)
        before = len(await audit_rows(sessionmaker))

        for who, path in (
            ("operator_a", "/v1/ops/seniors"),
            ("operator_a", "/v1/ops/queue"),
            ("operator_a", "/v1/ops/caregivers"),
            ("nurse", "/v1/visits"),
            ("provider_a", "/v1/provider/visits"),
            ("provider_a", f"/v1/provider/visits/{visit['id']}"),
            ("senior", "/v1/orders"),
        ):
            r = await client.get(path, headers=headers(world, who))
            assert r.status_code == 200, (path, r.text)

        assert len(await audit_rows(sessionmaker)) == before

    async def test_refused_and_contactless_reads_write_none(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        order, visit = await completed_visit(client, world)
        before = len(await audit_rows(sessionmaker))

        for who, path in (
            ("operator_b", f"/v1/ops/seniors/{world.senior.id}"),
            ("operator_b", f"/v1/ops/orders/{order['id']}"),
            ("helper", f"/v1/visits/{visit['id']}"),
            ("nurse", f"/v1/ops/seniors/{world.senior.id}"),
        ):
            r = await client.get(path, headers=headers(world, who))
            assert r.status_code in (403, 404), (path, r.text)
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)
        assert r.json()["senior"] is None

        assert len(await audit_rows(sessionmaker)) == before
