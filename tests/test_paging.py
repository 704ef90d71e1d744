"""Keyset paging: following ``next_cursor`` shows every item exactly once while orders are placed
and cancelled between pages (an offset showed an order twice when one was placed meanwhile)."""

from collections import Counter
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.factories import PASSWORD, World
from tests.test_dispatcher import dispatch, more_caregivers
from tests.test_orders import place


async def page(
    client: AsyncClient, path: str, who: dict[str, str], cursor: str | None, limit: int = 2
) -> tuple[list[str], str | None]:
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    r = await client.get(path, params=params, headers=who)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "limit", "next_cursor"}
    return [item["id"] for item in body["items"]], body["next_cursor"]


async def test_the_senior_s_list_never_repeats_an_order_placed_between_pages(
    client: AsyncClient, world: World
) -> None:
    placed = [str((await place(client, world.senior.auth))["id"]) for _ in range(5)]
    seen, cursor = await page(client, "/v1/orders", world.senior.auth, None)
    newer = []
    while cursor is not None:
        # Newest first: what is placed now goes before the first page, not into the next one.
        newer.append(str((await place(client, world.senior.auth))["id"]))
        ids, cursor = await page(client, "/v1/orders", world.senior.auth, cursor)
        seen += ids
    assert Counter(seen) == Counter(reversed(placed))
    assert seen == list(reversed(placed))
    ids, _ = await page(client, "/v1/orders", world.senior.auth, None, limit=100)
    assert set(ids) == set(placed) | set(newer)


async def test_the_queue_shows_each_order_once_while_orders_come_and_go(
    client: AsyncClient, world: World
) -> None:
    ops = world.operator_a.auth
    placed = [str((await place(client, world.senior.auth))["id"]) for _ in range(6)]
    seen, cursor = await page(client, "/v1/ops/queue", ops, None)
    gone = placed[-1]  # not yet seen: cancelled before its page
    r = await client.post(f"/v1/ops/orders/{gone}/cancel", json={"reason": "dup"}, headers=ops)
    assert r.status_code == 200, r.text
    late = []
    while cursor is not None:
        late.append(str((await place(client, world.neighbour.auth))["id"]))
        ids, cursor = await page(client, "/v1/ops/queue", ops, cursor)
        seen += ids
    # Oldest first: an order placed meanwhile joins the end and is seen once; the cancelled
    # one is gone; nothing else moved.
    assert max(Counter(seen).values()) == 1
    assert [i for i in seen if i in placed] == placed[:-1]
    assert set(seen) - set(placed) == set(late)


async def test_district_caregivers_and_seniors_page_without_repeats_while_one_is_added(
    client: AsyncClient, world: World
) -> None:
    ops = world.operator_a.auth
    for path in ("/v1/ops/caregivers", "/v1/ops/seniors"):
        full, _ = await page(client, path, ops, None, limit=100)
        assert len(full) >= 2
        seen, cursor = await page(client, path, ops, None, limit=1)
        if path == "/v1/ops/seniors":
            r = await client.post(
                "/v1/ops/seniors",
                json={
                    "name": "AAA First In Line",  # sorts before every page already shown
                    "phone": "13900000077",
                    "password": PASSWORD,
                    "address": "Room 1",
                    "neighbourhood": "Tumen",
                    "lat": 34.26,
                    "lon": 108.9,
                },
                headers=ops,
            )
            assert r.status_code == 201, r.text
        while cursor is not None:
            ids, cursor = await page(client, path, ops, cursor, limit=1)
            seen += ids
        assert seen == full, path


async def test_offers_page_by_cursor_open_ones_first(
    client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The offers list's keys (open first, deadline, newest, id) walked one offer at a time."""
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    await more_caregivers(client, sessionmaker, world, 3)
    for _ in range(3):
        r = await client.post(
            "/v1/orders", json={"service_code": "cleaning"}, headers=world.senior.auth
        )
        assert r.status_code == 201, r.text
    await dispatch(sessionmaker, settings)
    whole, _ = await page(client, "/v1/offers", world.provider_a_headers, None, limit=100)
    assert len(whole) >= 2
    seen, cursor = await page(client, "/v1/offers", world.provider_a_headers, None, limit=1)
    while cursor is not None:
        ids, cursor = await page(client, "/v1/offers", world.provider_a_headers, cursor, limit=1)
        seen += ids
    assert seen == whole
