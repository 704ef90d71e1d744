"""The senior's phone page /app on a 390x844 viewport: order from the tiles, follow my orders,
cancel and rate in the page, SOS by press-and-hold or two taps (a single tap sends nothing),
and the MIIT aging-friendly numbers measured in every state (text >= 24px with line spacing
>= 1.3, targets >= 60x60 px; the text-size control reaches 40px), axe clean in every state."""

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from httpx import AsyncClient
from playwright.async_api import Page, expect

from tests.browser import Site, axe, shot
from tests.factories import NEAR_HOME, World, ready

SENIOR = "13900000001"
SHANGHAI = ZoneInfo("Asia/Shanghai")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Every visible text at >= 24px (18pt) with line spacing >= 1.3; every visible control (button,
# link, field) at least 60x60 px; nothing wider than the phone (no sideways scrolling).
# Visible: laid out with a real size (the skip link waiting off-screen and screen-reader-only
# text are not).
MEASURE = """(minText) => {
  const visible = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && r.right > 0
      && e.checkVisibility({opacityProperty: true, visibilityProperty: true});
  };
  const small = [], cramped = [], tiny = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode()); ) {
    const e = node.parentElement;
    if (!node.textContent.trim() || !e || e.closest("script, noscript") || !visible(e)) continue;
    const s = getComputedStyle(e);
    const size = parseFloat(s.fontSize);
    const line = s.lineHeight === "normal" ? 0 : parseFloat(s.lineHeight);
    const what = `${e.tagName.toLowerCase()}.${e.className}: ${node.textContent.trim().slice(0, 30)}`;
    if (size < minText) small.push(`${what} (${size}px)`);
    if (line < 1.3 * size - 0.01) cramped.push(`${what} (${s.lineHeight} for ${size}px)`);
  }
  for (const e of document.querySelectorAll("a[href], button, input:not([type=hidden]), textarea, select")) {
    if (!visible(e)) continue;
    const r = e.getBoundingClientRect();
    if (r.width < 60 || r.height < 60) {
      tiny.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  const wide = document.documentElement.scrollWidth > window.innerWidth;
  return {small, cramped, tiny, wide};
}"""


async def check(page: Page, name: str, *, min_text: int = 24) -> None:
    """The state as it is now: MIIT sizes measured, no serious axe violation, a screenshot."""
    measured = await page.evaluate(MEASURE, min_text)
    assert measured == {"small": [], "cramped": [], "tiny": [], "wide": False}, name
    assert await axe(page) == [], name
    await shot(page, f"app-{name}")


async def open_app(site: Site) -> Page:
    page = await site.open("/app", SENIOR, timezone_id="Asia/Shanghai")
    await expect(page.locator(".tile").first).to_be_visible()
    return page


async def orders_of(site: Site, world: World) -> list[dict[str, Any]]:
    async with AsyncClient(base_url=site.base) as api:
        r = await api.get("/v1/orders", headers=world.senior.auth)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


async def place(site: Site, world: World, service: str = "meal_delivery") -> str:
    async with AsyncClient(base_url=site.base) as api:
        r = await api.post("/v1/orders", json={"service_code": service}, headers=world.senior.auth)
        assert r.status_code == 201, r.text
        order_id: str = r.json()["id"]
        return order_id


async def cancel(site: Site, world: World, order_id: str) -> None:
    """Cancel through the API, again if dispatch moved the order on at the same moment."""
    async with AsyncClient(base_url=site.base) as api:
        for _ in range(5):
            r = await api.post(
                f"/v1/orders/{order_id}/cancel", json={"reason": "test"}, headers=world.senior.auth
            )
            if r.status_code != 409 or r.json()["code"] != "concurrent_change":
                break
        assert r.status_code == 200, r.text


async def take(api: AsyncClient, world: World, order_id: str) -> str:
    """The nurse (on duty) accepts the offer the dispatcher sent her; returns the visit id."""
    for _ in range(100):
        offers = (await api.get("/v1/offers", headers=world.nurse.auth)).json()["items"]
        mine = [o for o in offers if o["order_id"] == order_id and o["status"] == "open"]
        if mine:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no offer reached the nurse")
    r = await api.post(f"/v1/offers/{mine[0]['id']}/accept", headers=world.nurse.auth)
    assert r.status_code == 200, r.text
    visits = (await api.get("/v1/visits", headers=world.nurse.auth)).json()["items"]
    visit_id: str = next(v["id"] for v in visits if v["order_id"] == order_id)
    return visit_id


async def check_in(api: AsyncClient, world: World, visit_id: str) -> None:
    near = {"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]}
    r = await api.post(f"/v1/visits/{visit_id}/check-in", json=near, headers=world.nurse.auth)
    assert r.status_code == 200, r.text


async def check_out(api: AsyncClient, world: World, visit_id: str) -> None:
    r = await api.post(f"/v1/visits/{visit_id}/check-out", json={}, headers=world.nurse.auth)
    assert r.status_code == 200, r.text


async def completed_order(site: Site, world: World) -> str:
    """A meal the nurse (on duty first, so the offer goes to her) took, delivered and closed."""
    async with AsyncClient(base_url=site.base) as api:
        await ready(api, world.nurse)
        order_id = await place(site, world)
        visit_id = await take(api, world, order_id)
        await check_in(api, world, visit_id)
        await check_out(api, world, visit_id)
        return order_id


async def test_a_meal_ordered_as_soon_as_possible_through_tiles_and_one_confirmation(
    site: Site, world: World
) -> None:
    page = await open_app(site)
    await expect(page.locator(".tile-name")).to_contain_text(["送餐", "居家保洁"])
    await check(page, "services")

    await page.click(".tile[data-code=meal_delivery]")
    await expect(page.locator("#when-service")).to_have_text("送餐上门")
    await expect(page.locator("[data-window=asap]")).to_have_attribute("aria-pressed", "true")
    await page.fill("#note", "放门口就好")
    await check(page, "when")

    await page.click("#to-confirm")
    await expect(page.locator("#confirm-when")).to_have_text("尽快")
    await expect(page.locator("#confirm-price")).to_contain_text("25")
    await expect(page.locator("#confirm-note")).to_have_text("放门口就好")
    await check(page, "confirm")

    # An impatient double tap places one order.
    await page.dblclick("#place")
    card = page.locator(".order").first
    await expect(card.locator(".order-title")).to_have_text("送餐上门")
    await expect(card.locator(".status-text")).to_have_text(
        re.compile("正在为您找护理员|值班台已收到您的呼叫，正在为您找人帮忙")
    )
    await expect(page.locator("#tab-orders")).to_have_attribute("aria-current", "page")
    assert not UUID.search(await page.locator("main").inner_text())
    await check(page, "orders-placed")

    orders = await orders_of(site, world)
    assert len(orders) == 1
    assert orders[0]["service_code"] == "meal_delivery"
    assert orders[0]["asap"] is True
    assert orders[0]["notes"] == "放门口就好"


async def test_a_window_is_a_big_preset_choice(site: Site, world: World) -> None:
    page = await open_app(site)
    await page.click(".tile[data-code=cleaning]")
    await page.click("[data-window=tomorrow-am]")
    await expect(page.locator("[data-window=tomorrow-am]")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(page.locator("[data-window=asap]")).to_have_attribute("aria-pressed", "false")
    await check(page, "when-window")
    await page.click("#to-confirm")
    await expect(page.locator("#confirm-when")).to_have_text("明天 08:00 至 12:00")
    await page.click("#place")
    await expect(page.locator(".order .when").first).to_have_text("明天 08:00 至 12:00")

    (order,) = await orders_of(site, world)
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    start = datetime.fromisoformat(order["window_start"]).astimezone(SHANGHAI)
    end = datetime.fromisoformat(order["window_end"]).astimezone(SHANGHAI)
    assert (start.date(), start.hour, end.hour) == (tomorrow, 8, 12)
    assert order["asap"] is False


async def test_cancel_asks_inline_for_a_reason_first(site: Site, world: World) -> None:
    await place(site, world)
    page = await open_app(site)
    await page.click("#tab-orders")
    card = page.locator(".order").first
    await card.locator("button.cancel").click()
    panel = card.locator(".cancel-panel")
    await expect(panel).to_be_visible()
    await check(page, "cancel-confirm")
    # "Keep the order" changes nothing.
    await panel.locator("button.keep").click()
    await expect(panel).to_be_hidden()
    assert (await orders_of(site, world))[0]["status"] != "cancelled"

    await card.locator("button.cancel").click()
    await panel.get_by_role("button", name="不需要了").click()
    await expect(card.locator(".status-text")).to_have_text("已取消")
    await expect(card.locator("button.cancel")).to_have_count(0)
    await check(page, "cancelled")
    (order,) = await orders_of(site, world)
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "不需要了")


async def test_sos_by_press_and_hold_opens_the_sos_screen(site: Site, world: World) -> None:
    page = await open_app(site)
    await check(page, "sos-bar")
    box = await page.locator("#sos").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.wait_for_timeout(700)
    # Half-way: the ring fills and the button says to keep holding; nothing is sent yet.
    await expect(page.locator("#sos-label")).to_have_text("请继续按住…")
    await shot(page, "app-sos-holding")
    assert await orders_of(site, world) == []
    await page.wait_for_timeout(1100)
    await page.mouse.up()

    await expect(page.locator("#screen-sos")).to_be_visible()
    await expect(page.locator("#sos-status")).to_have_text(
        re.compile("正在通知附近的护理员|值班台已收到您的呼叫")
    )
    await expect(page.locator("#sos-check")).to_be_hidden()
    await check(page, "sos-screen")
    (order,) = await orders_of(site, world)
    assert order["priority"] == "emergency"


async def test_sos_by_two_taps_and_by_keyboard(site: Site, world: World) -> None:
    page = await open_app(site)
    await page.click("#sos")
    await expect(page.locator("#sos-check")).to_be_visible()
    await expect(page.locator("#sos-confirm")).to_be_focused()
    await check(page, "sos-check")
    await page.wait_for_timeout(500)
    await page.click("#sos-confirm")
    await expect(page.locator("#screen-sos")).to_be_visible()
    (order,) = await orders_of(site, world)
    assert order["priority"] == "emergency"

    # The keyboard path, on a fresh page: Enter on SOS, then Enter on "Yes, send SOS".
    await cancel(site, world, order["id"])
    page = await open_app(site)
    await page.focus("#sos")
    await page.keyboard.press("Enter")
    await expect(page.locator("#sos-confirm")).to_be_focused()
    await page.wait_for_timeout(500)
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sos")).to_be_visible()
    assert len([o for o in await orders_of(site, world) if o["status"] != "cancelled"]) == 1


async def test_a_single_tap_sends_no_sos(site: Site, world: World) -> None:
    page = await open_app(site)
    await page.click("#sos")
    await expect(page.locator("#sos-check")).to_be_visible()
    # Unanswered, the question goes away after five seconds, and nothing was sent.
    await expect(page.locator("#sos-check")).to_be_hidden(timeout=7_000)
    await expect(page.locator("#screen-sos")).to_be_hidden()
    assert await orders_of(site, world) == []


async def test_rate_a_completed_visit_with_big_stars(site: Site, world: World) -> None:
    await completed_order(site, world)
    page = await open_app(site)
    await page.click("#tab-orders")
    card = page.locator(".order").first
    await expect(card.locator(".status-text")).to_have_text("已完成")
    await expect(card.locator(".person-name")).to_contain_text("Nurse Zhang")
    await check(page, "rate")
    await card.get_by_role("button", name="4 星，满意").click()
    await expect(card.locator(".chosen")).to_have_text("您选了 4 星：满意")
    await card.locator("textarea").fill("很细心")
    await check(page, "rate-chosen")
    await card.locator(".send-rating").click()
    await expect(card.locator(".rated")).to_contain_text("您的评分：4 星，满意")
    await check(page, "rated")
    (order,) = await orders_of(site, world)
    assert (order["rating"], order["rating_comment"]) == (4, "很细心")


async def test_the_text_size_control_reaches_40px_and_is_remembered(
    site: Site, world: World
) -> None:
    page = await open_app(site)
    assert await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") == 24
    await page.click("#text-size")
    await page.click("#text-size")
    await expect(page.locator("#text-size-name")).to_have_text("特大")
    await check(page, "text-biggest", min_text=40)
    await page.reload()
    await expect(page.locator(".tile").first).to_be_visible()
    await expect(page.locator("#text-size-name")).to_have_text("特大")
    size = await page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.tile-name')).fontSize)"
    )
    assert size >= 40
    await page.click("#tab-orders")
    await check(page, "text-biggest-orders", min_text=40)


async def test_my_orders_follow_the_visit_live(site: Site, world: World) -> None:
    page = await open_app(site)
    await page.click("#tab-orders")
    await expect(page.locator("#orders-empty")).to_be_visible()
    async with AsyncClient(base_url=site.base) as api:
        await ready(api, world.nurse)
        order_id = await place(site, world)
        card = page.locator(".order").first
        await expect(card.locator(".order-title")).to_have_text("送餐上门")
        visit_id = await take(api, world, order_id)
        # Assigned: who is coming, her initial, and when (no reload: the event stream).
        await expect(card.locator(".status-text")).to_have_text("已安排好护理员")
        await expect(card.locator(".person-name")).to_have_text("护理员：Nurse Zhang")
        await expect(card.locator(".initial")).to_have_text("N")
        await expect(card.locator(".person-line")).to_have_text(
            re.compile(r"大约 \d+ 分钟后到|马上就到|预计上门")
        )
        assert not UUID.search(await page.locator("main").inner_text())
        await check(page, "order-assigned")
        await check_in(api, world, visit_id)
        await expect(card.locator(".status-text")).to_have_text("护理员正在为您服务")
        await check_out(api, world, visit_id)
        await expect(card.locator(".status-text")).to_have_text("已完成")
        await expect(card.locator(".star-button")).to_have_count(5)
        await expect(card.locator("button.cancel")).to_have_count(0)


async def test_the_sos_screen_says_who_is_coming_live(site: Site, world: World) -> None:
    async with AsyncClient(base_url=site.base) as api:
        await ready(api, world.nurse)
        page = await open_app(site)
        await page.click("#sos")
        await page.wait_for_timeout(500)
        await page.click("#sos-confirm")
        await expect(page.locator("#screen-sos")).to_be_visible()
        (order,) = await orders_of(site, world)
        await take(api, world, order["id"])
        await expect(page.locator("#sos-status")).to_have_text(
            re.compile(r"护理员正在赶来：Nurse Zhang(，大约 \d+ 分钟到)?。")
        )
        await expect(page.locator("#sos-caregiver .initial")).to_have_text("N")
        await check(page, "sos-coming")
        # The SOS button now leads back here rather than sending another call.
        await page.click("[data-go=orders]")
        await expect(page.locator("#sos-label")).to_have_text("已发出呼救")
        await page.click("#sos")
        await expect(page.locator("#screen-sos")).to_be_visible()
        assert len(await orders_of(site, world)) == 1
