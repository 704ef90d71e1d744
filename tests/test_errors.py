"""The one error shape holds for every error, including domain errors that carry extra members."""

from httpx import AsyncClient

from tests.factories import World


async def test_illegal_transition_is_a_409_problem_with_the_order_status(
    client: AsyncClient, world: World
) -> None:
    r = await client.post(
        "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
    )
    order_id = r.json()["id"]
    await client.post(
        f"/v1/orders/{order_id}/cancel", json={"reason": "x"}, headers=world.senior.auth
    )

    r = await client.post(
        f"/v1/orders/{order_id}/cancel", json={"reason": "again"}, headers=world.senior.auth
    )

    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 409
    assert body["code"] == "illegal_transition"
    assert body["order_status"] == "cancelled"
    assert {"type", "title", "detail"} <= body.keys()


async def test_unknown_route_and_method_are_problems(client: AsyncClient) -> None:
    r = await client.get("/v1/nowhere")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    r = await client.delete("/healthz")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_streamed_body_over_the_limit_is_413_not_a_parse_error(
    client: AsyncClient, world: World
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"service_code": "cleaning", "notes": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = await client.post(
        "/v1/orders",
        content=chunks(),
        headers={**world.senior.auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


async def test_a_non_numeric_content_length_is_a_400(client: AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/orders",
        content=b"{}",
        headers={**world.senior.auth, "Content-Type": "application/json", "Content-Length": "abc"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
