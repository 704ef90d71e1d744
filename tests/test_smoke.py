from httpx import AsyncClient

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
