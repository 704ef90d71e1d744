import gc
import weakref

from httpx import ASGITransport, AsyncClient

from app.config import Settings
from app.main import create_app
from tests.factories import NEAR_HOME, World, ready


async def test_order_life(client: AsyncClient, world: World) -> None:
    r = await client.post("/v1/orders", json={"service_code": "bathing"}, headers=world.senior.auth)
    assert r.status_code == 201, r.text
    order = r.json()
    await ready(client, world.nurse)
    r = await client.post(
        f"/v1/ops/orders/{order['id']}/assign",
        json={"caregiver_id": str(world.nurse.id)},
        headers=world.operator_a.auth,
    )
    assert r.status_code == 200, r.text
    r = await client.get("/v1/visits", headers=world.nurse.auth)
    assert r.status_code == 200, r.text
    visit = r.json()["items"][0]
    r = await client.post(
        f"/v1/visits/{visit['id']}/check-in",
        json={"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]},
        headers=world.nurse.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["senior"]["address"]
    r = await client.post(f"/v1/visits/{visit['id']}/check-out", json={}, headers=world.nurse.auth)
    assert r.status_code == 200, r.text
    assert r.json()["senior"] is None
    r = await client.post(
        f"/v1/orders/{order['id']}/rating", json={"score": 5}, headers=world.senior.auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"


async def test_an_app_that_is_done_with_is_freed(settings: Settings) -> None:
    """Every test, every `serve` reload and every embedding builds apps: none may outlive its use.
    `FastAPIOffline`'s per-app docs closures once pinned each app in FastAPI's callable cache."""
    refs = []
    for _ in range(3):
        application = create_app(settings)
        async with (
            application.router.lifespan_context(application),
            AsyncClient(transport=ASGITransport(app=application), base_url="http://t") as http,
        ):
            assert (await http.get("/docs")).status_code == 200
            assert (await http.get("/healthz")).status_code == 200
        refs.append(weakref.ref(application))
        del application, http
    gc.collect()
    assert [r for r in refs if r() is not None] == []
