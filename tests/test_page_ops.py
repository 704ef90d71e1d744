"""The operator console /ops in Debian's Chromium on a desk screen (1440 x 900): the live queue
with the SOS alert, the map, today's KPIs, and working an order with the keyboard alone."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Page, expect

from tests.browser import DESK, Site, axe, shot
from tests.factories import FAR, World, ready


@pytest.fixture
async def http(site: Site) -> AsyncIterator[AsyncClient]:
    """The running service over HTTP, as the seniors' and caregivers' phones reach it."""
    async with AsyncClient(base_url=site.base, timeout=10) as client:
        yield client


async def place(http: AsyncClient, token: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await http.post("/v1/orders", json=body, headers=token)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def sos(http: AsyncClient, token: dict[str, str]) -> dict[str, Any]:
    r = await http.post("/v1/sos", headers=token)
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


async def order_status(http: AsyncClient, world: World, order_id: str) -> str:
    r = await http.get(f"/v1/ops/orders/{order_id}", headers=world.operator_a.auth)
    assert r.status_code == 200, r.text
    return r.json()["status"]  # type: ignore[no-any-return]


async def console(site: Site) -> Page:
    page = await site.open("/ops", "op.a", viewport=DESK)
    await expect(page.locator("#queue-loading")).to_be_hidden()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return page


def row(page: Page, order_id: str) -> Any:
    return page.locator(f"#queue tr[data-order-id='{order_id}']")


async def escalated(http: AsyncClient, world: World, service_code: str) -> dict[str, Any]:
    """An order nobody on duty can take: the dispatcher escalates it to the desk."""
    order = await place(http, world.senior.auth, service_code=service_code)
    for _ in range(100):
        if await order_status(http, world, order["id"]) == "escalated":
            return order
        await asyncio.sleep(0.1)
    raise AssertionError("the order was not escalated")


async def test_an_sos_raises_the_alert_within_2_s_and_heads_the_queue(
    site: Site, world: World, http: AsyncClient
) -> None:
    await ready(http, world.nurse)
    meal = await place(http, world.neighbour.auth, service_code="meal_delivery")
    page = await console(site)
    await expect(row(page, meal["id"])).to_have_attribute("data-status", "offered")
    await expect(page.locator("#queue tr")).to_have_count(1)
    await expect(page.locator("#alert")).to_be_hidden()

    order = await sos(http, world.senior.auth)

    banner = page.locator("#alert")
    await expect(banner).to_be_visible(timeout=2000)
    assert await banner.get_attribute("role") == "alert"
    await expect(banner).to_contain_text("紧急呼叫")
    await expect(banner).to_contain_text("Senior 0001")
    first = page.locator("#queue tr").first
    await expect(first).to_have_attribute("data-order-id", order["id"])
    await expect(first.locator(".timer")).to_contain_text("剩余")
    await expect(first).to_contain_text("Tumen")
    await expect(page.locator("#queue tr").nth(1)).to_have_attribute("data-order-id", meal["id"])
    await shot(page, "ops-sos-alert")
    assert await axe(page) == []


async def tab_to_the_queue(page: Page) -> None:
    """Tab from the top of the page until the queue's row has the focus (keyboard only)."""
    for _ in range(20):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.matches('#queue tr')"):
            return
    raise AssertionError("the queue is not in the tab order")


async def test_an_escalated_order_is_assigned_from_the_candidates_with_the_keyboard_alone(
    site: Site, world: World, http: AsyncClient
) -> None:
    order = await escalated(http, world, "nursing_visit")  # nobody on duty
    await ready(http, world.nurse)
    page = await console(site)
    await expect(page.locator("#alert")).to_contain_text("已转人工")

    await tab_to_the_queue(page)
    await expect(page.locator("#queue tr:focus")).to_have_attribute("data-order-id", order["id"])
    await page.keyboard.press("Enter")
    detail = page.locator("#detail")
    await expect(detail).to_be_visible()
    await expect(page.locator("#detail-title")).to_contain_text("Senior 0001")
    await expect(detail.locator("[data-candidate]").first).to_contain_text("Nurse Zhang")
    await expect(detail.locator(".decision.k-escalate")).to_contain_text("转人工")
    assert await axe(page) == []
    await shot(page, "ops-detail-candidates")

    await page.keyboard.press("a")  # the first candidate's Assign button
    focused = page.locator(":focus")
    await expect(focused).to_have_attribute("aria-label", "指派给 Nurse Zhang")
    await page.keyboard.press("Enter")
    await expect(page.locator("#assign-reason")).to_be_focused()
    await page.keyboard.type("Phoned her, she is close by")
    await page.keyboard.press("Enter")

    await expect(detail.locator(".facts .badge.s-assigned")).to_be_visible()
    await expect(detail.locator(".decision.k-manual")).to_contain_text("Nurse Zhang")
    assert await order_status(http, world, order["id"]) == "assigned"
    await expect(row(page, order["id"])).to_have_attribute("data-status", "assigned")
    await expect(page.locator("#alert")).to_be_hidden()
    await shot(page, "ops-assigned")

    await page.keyboard.press("Escape")
    await expect(detail).to_be_hidden()
    await expect(row(page, order["id"])).to_be_focused()


async def test_an_overridable_candidate_needs_a_reason(
    site: Site, world: World, http: AsyncClient
) -> None:
    order = await escalated(http, world, "meal_delivery")  # nobody on duty
    page = await console(site)
    await row(page, order["id"]).click()
    nurse = page.locator(f"#detail [data-candidate='{world.nurse.id}']")
    await expect(nurse).to_contain_text("需越过规则")
    await expect(nurse).to_contain_text("不在岗")
    await nurse.locator("[data-override]").click()
    await page.click("#assign-confirm")

    error = page.locator("#assign-error")
    await expect(error).to_contain_text("请填写越过规则的原因")
    await expect(page.locator("#assign-reason")).to_have_attribute("aria-invalid", "true")
    assert await order_status(http, world, order["id"]) == "escalated"
    await shot(page, "ops-override-needs-reason")

    await page.fill("#assign-reason", "Off duty but next door; she agreed to go")
    await page.click("#assign-confirm")
    await expect(page.locator("#detail .decision.k-manual")).to_contain_text("不在岗")
    assert await order_status(http, world, order["id"]) == "assigned"


async def test_cancel_with_a_reason(site: Site, world: World, http: AsyncClient) -> None:
    await ready(http, world.nurse)
    order = await place(http, world.senior.auth, service_code="meal_delivery")
    page = await console(site)
    await row(page, order["id"]).focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-title")).to_contain_text("送餐")
    await page.locator("#detail").focus()
    await page.keyboard.press("c")
    await expect(page.locator("#cancel-reason")).to_be_focused()
    await page.click("#cancel-confirm")
    await expect(page.locator("#cancel-error")).to_contain_text("请填写取消原因")
    assert await order_status(http, world, order["id"]) != "cancelled"

    await page.fill("#cancel-reason", "Family will bring lunch today")
    await page.click("#cancel-confirm")
    await expect(page.locator("#detail .facts .badge.s-cancelled")).to_be_visible()
    await expect(row(page, order["id"])).to_have_count(0)
    assert await order_status(http, world, order["id"]) == "cancelled"
    await expect(page.locator("#detail .timeline")).to_contain_text("Family will bring lunch today")


async def test_the_map_and_todays_kpis(site: Site, world: World, http: AsyncClient) -> None:
    await ready(http, world.nurse)
    await ready(http, world.helper, at=FAR)
    first = await place(http, world.senior.auth, service_code="meal_delivery")
    second = await place(http, world.neighbour.auth, service_code="companionship")
    page = await console(site)
    svg = page.locator("#map svg")
    await expect(svg).to_be_visible()
    for order in (first, second):
        await expect(svg.locator(f"[data-order-id='{order['id']}']")).to_have_count(1)
    await expect(svg.locator("[data-order-id]")).to_have_count(2)
    await expect(svg.locator("[data-caregiver-id]")).to_have_count(2)
    nurse = svg.locator(f"[data-caregiver-id='{world.nurse.id}']")
    await expect(nurse).to_have_attribute("data-state", "offered")
    await expect(nurse.locator("title")).to_contain_text("Nurse Zhang")
    await expect(svg.locator("line.offered")).not_to_have_count(0)
    await expect(page.locator("#legend")).to_contain_text("护理员有待回复派单")

    kpis = page.locator("#kpis")
    await expect(kpis.locator("[data-kpi=orders_placed] .kpi-value")).to_have_text("2")
    await expect(kpis.locator("[data-kpi=fill_rate] .kpi-value")).to_have_text("0%")
    await expect(page.locator("#kpi-date")).to_contain_text("Asia/Shanghai")

    # A new order appears live, on the queue and on the map.
    third = await place(http, world.senior.auth, service_code="cleaning")
    await expect(row(page, third["id"])).to_be_visible()
    await expect(svg.locator(f"[data-order-id='{third['id']}']")).to_have_count(1, timeout=5000)
    await expect(kpis.locator("[data-kpi=orders_placed] .kpi-value")).to_have_text(
        "3", timeout=15000
    )
    assert await axe(page) == []
    await shot(page, "ops-map-kpis")
