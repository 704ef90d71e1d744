"""The senior's phone page /app on a 390x844 viewport: order from the tiles, follow my orders,
cancel and rate in the page, SOS by press-and-hold or two taps (a single tap sends nothing),
and the MIIT aging-friendly numbers measured in every state (text >= 24px with line spacing
>= 1.3, targets >= 60x60 px; the text-size control reaches 40px, in Chinese and English, with
nothing clipped and the page's content always ending above the fixed SOS bar), axe clean in
every state."""

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient
from playwright.async_api import Page, expect

from tests.browser import OUTPUT, Site, axe, shot
from tests.factories import NEAR_HOME, World, ready

SENIOR = "13900000001"
SHANGHAI = ZoneInfo("Asia/Shanghai")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Every visible text at >= 24px (18pt) with line spacing >= 1.3 (the SOS bar's text is capped
# at 32px so the bar stays a fifth of the screen: there the minimum is min(minText, 32)); every
# visible control (button, link, field) at least 60x60 px; nothing wider than the phone (no
# sideways scrolling); nothing clipped: no box whose content is wider than the box (scrollWidth
# > clientWidth) and no line of text reaching outside its block or the screen; scrolled to the
# bottom, every element of the page ends above the fixed SOS bar (nothing hidden under it).
# Visible: laid out with a real size (the skip link waiting off-screen and screen-reader-only
# text are not).
MEASURE = """async ([minText, barText]) => {
  // Measured once the page has laid out what just changed (and the bar's room with it).
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const visible = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && r.right > 0
      && e.checkVisibility({opacityProperty: true, visibilityProperty: true});
  };
  const small = [], cramped = [], tiny = [], clipped = [], under = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode()); ) {
    const e = node.parentElement;
    if (!node.textContent.trim() || !e || e.closest("script, noscript") || !visible(e)) continue;
    const s = getComputedStyle(e);
    const size = parseFloat(s.fontSize);
    const line = s.lineHeight === "normal" ? 0 : parseFloat(s.lineHeight);
    const what = `${e.tagName.toLowerCase()}.${e.className}: ${node.textContent.trim().slice(0, 30)}`;
    if (size < (e.closest("#sos-bar") ? barText : minText)) small.push(`${what} (${size}px)`);
    // Each line of the text inside its block's box and inside the screen.
    let block = e;
    while (block.parentElement && ["inline", "contents"].includes(getComputedStyle(block).display)) block = block.parentElement;
    const box = block.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width < 1) continue;
      if (r.left < Math.max(0, box.left) - 1 || r.right > Math.min(window.innerWidth, box.right) + 1) {
        clipped.push(`${what}: text ${Math.round(r.left)}..${Math.round(r.right)} outside ${Math.round(box.left)}..${Math.round(box.right)}`);
        break;
      }
    }
    if (line < 1.3 * size - 0.01) cramped.push(`${what} (${s.lineHeight} for ${size}px)`);
  }
  for (const e of document.querySelectorAll("a[href], button, input:not([type=hidden]), textarea, select")) {
    if (!visible(e)) continue;
    const r = e.getBoundingClientRect();
    if (r.width < 60 || r.height < 60) {
      tiny.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  for (const e of document.body.querySelectorAll("*")) {
    if (e.closest("svg, script, noscript") || !visible(e)) continue;
    if (["inline", "contents"].includes(getComputedStyle(e).display)) continue;
    if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0) {
      clipped.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${e.scrollWidth} in ${e.clientWidth}px`);
    }
  }
  const wide = document.documentElement.scrollWidth > window.innerWidth;
  // Scrolled to the very bottom, nothing of the page may end under the fixed SOS bar.
  const scrolled = window.scrollY;
  window.scrollTo(0, document.documentElement.scrollHeight);
  const bar = document.getElementById("sos-bar").getBoundingClientRect();
  for (const e of document.querySelectorAll("main *")) {
    if (e.closest("#sos-bar, svg") || !visible(e)) continue;
    const r = e.getBoundingClientRect();
    if (r.bottom > bar.top + 0.5) {
      under.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} ends at ${Math.round(r.bottom)}, bar at ${Math.round(bar.top)}`);
    }
  }
  window.scrollTo(0, scrolled);
  return {small, cramped, tiny, wide, clipped: clipped.slice(0, 8), under: under.slice(0, 8)};
}"""

# The SOS bar at rest (no "Send an SOS?" panel open) takes at most this part of the screen.
BAR_SHARE = 0.2


async def check(page: Page, name: str, *, min_text: int = 24) -> None:
    """The state as it is now: MIIT sizes measured, nothing clipped or under the SOS bar, the
    bar at rest a reasonable part of the screen, no serious axe violation, a screenshot."""
    measured = await page.evaluate(MEASURE, [min_text, min(min_text, 32)])
    assert measured == {
        "small": [],
        "cramped": [],
        "tiny": [],
        "wide": False,
        "clipped": [],
        "under": [],
    }, name
    if await page.locator("#sos-check").is_hidden():
        share = await page.evaluate(
            "document.getElementById('sos-bar').getBoundingClientRect().height / innerHeight"
        )
        assert share <= BAR_SHARE, (name, share)
    assert await axe(page) == [], name
    await shot(page, f"app-{name}")
    # And what the phone's screen shows (the fixed SOS bar where she sees it).
    await page.screenshot(path=str(OUTPUT / "screenshots" / f"app-{name.lower()}-screen.png"))


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


# A tab's words on at most two lines (never one character per line).
TAB_LINES = """() => [...document.querySelectorAll(".tab")].map((tab) => {
  const range = document.createRange();
  range.selectNodeContents(tab.firstChild);
  return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
})"""


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_every_state_is_readable_at_40px(site: Site, world: World, lang: str) -> None:
    """At the largest text size (40px) on a 390px phone, in Chinese and in English: every
    state measured (nothing clipped or overflowing, nothing under the SOS bar, the bar at rest
    at most a fifth of the screen), the tabs' words whole, the stars wrapping to two rows."""
    await completed_order(site, world)  # a visit to rate: the five stars
    await cancel(site, world, await place(site, world, "cleaning"))  # a cancelled order
    name = f"40px-{lang}"
    page = await site.open("/app", SENIOR, timezone_id="Asia/Shanghai", lang=lang)
    await expect(page.locator(".tile").first).to_be_visible()
    await page.click("#text-size")
    await page.click("#text-size")
    await expect(page.locator("#text-size-name")).to_have_text(
        "特大" if lang == "zh-CN" else "Largest"
    )
    await check(page, f"{name}-services", min_text=40)
    assert max(await page.evaluate(TAB_LINES)) <= 2

    await page.click(".tile[data-code=hospital_escort]")
    await page.fill("#note", "请先打电话" * 6 + "Doorbell-broken-please-knock-loudly")
    await check(page, f"{name}-when", min_text=40)
    await page.click("#to-confirm")
    await expect(page.locator("#confirm-price")).to_have_text(re.compile(r"^¥\d+\.00$"))
    await check(page, f"{name}-confirm", min_text=40)
    await page.click("#place")
    waiting = page.locator(".order").first
    await expect(waiting.locator(".waited")).to_be_visible()
    await expect(waiting.locator(".price")).not_to_contain_text("CN")
    await check(page, f"{name}-orders", min_text=40)
    assert max(await page.evaluate(TAB_LINES)) <= 2

    await waiting.locator("button.cancel").click()
    await check(page, f"{name}-cancel-panel", min_text=40)

    done = page.locator(".order[data-status=completed]")
    await done.locator(".star-button").first.scroll_into_view_if_needed()
    tops = {
        round((await star.bounding_box() or {"y": 0})["y"])
        for star in await done.locator(".star-button").all()
    }
    assert len(tops) == 2  # two rows of stars
    await done.locator("[data-score='5']").click()
    await check(page, f"{name}-rate", min_text=40)

    await page.click("#sos")
    await check(page, f"{name}-sos-check", min_text=40)
    await page.wait_for_timeout(500)
    await page.click("#sos-confirm")
    await expect(page.locator("#screen-sos")).to_be_visible()
    await expect(page.locator("#sos-waited")).to_be_visible()
    await check(page, f"{name}-sos-screen", min_text=40)


async def test_the_sos_screen_starts_clean_with_call_120_in_view(site: Site, world: World) -> None:
    """An SOS clears the message of what was done before it; at the standard size the
    "Call 120" button is in full view above the SOS bar; the room left for the bar follows
    the bar's height when the text size changes."""
    await place(site, world)
    page = await open_app(site)
    await page.click("#tab-orders")
    card = page.locator(".order").first
    await card.locator("button.cancel").click()
    await card.locator(".cancel-panel").get_by_role("button", name="不需要了").click()
    await expect(page.locator("#announce")).to_have_text("订单已取消。")

    await page.click("#sos")
    await page.wait_for_timeout(500)
    await page.click("#sos-confirm")
    await expect(page.locator("#screen-sos")).to_be_visible()
    await expect(page.locator("#announce")).to_be_hidden()
    await expect(page.locator("#sos-status")).not_to_be_empty()
    await check(page, "sos-screen-clean")
    call = await page.locator("#call-120").bounding_box()
    bar = await page.locator("#sos-bar").bounding_box()
    assert call is not None
    assert bar is not None
    assert call["y"] >= 0, call
    assert call["y"] + call["height"] <= bar["y"], (call, bar)
    for _ in range(2):
        await page.click("#text-size")
    await check(page, "sos-screen-biggest", min_text=40)
    await page.click("#sos-label")  # the bar grows with the question; the page's room too
    await check(page, "sos-screen-biggest-again", min_text=40)


async def test_waiting_shows_how_long_and_what_happens_next(site: Site, world: World) -> None:
    """A waiting order and a waiting SOS say how long since she asked (moving on each minute)
    and what happens next; her order's note is on her card; prices read ¥25.00."""
    page = await open_app(site)
    await page.clock.install()
    await page.reload()
    await expect(page.locator(".tile").first).to_be_visible()
    async with AsyncClient(base_url=site.base) as api:
        r = await api.post(
            "/v1/orders",
            json={"service_code": "meal_delivery", "notes": "放门口就好"},
            headers=world.senior.auth,
        )
        assert r.status_code == 201, r.text
    await page.click("#tab-orders")
    card = page.locator(".order:not(.order-sos)")
    await expect(card.locator(".waited")).to_have_text("刚刚下单。")
    await expect(card.locator(".next")).to_have_text(
        re.compile("如果一直没有护理员接单，值班台会为您安排。|值班台正在为您安排护理员")
    )
    await expect(card.locator(".note")).to_have_text("您的留言：放门口就好")
    await expect(card.locator(".price")).to_have_text("价格：¥25.00")

    await page.click("#sos")
    await page.wait_for_timeout(500)
    await page.click("#sos-confirm")
    await expect(page.locator("#sos-waited")).to_have_text("刚刚发出呼救。")
    await expect(page.locator("#sos-next")).to_have_text(re.compile("值班台"))
    await page.clock.fast_forward("02:00")
    await expect(page.locator("#sos-waited")).to_have_text("呼救已经 2 分钟了。")
    await check(page, "sos-waiting")
    await page.click("#tab-orders")
    await expect(card.locator(".waited")).to_have_text("已经等了 2 分钟。")
    await check(page, "order-waiting")


async def test_prices_read_yuan_in_english(site: Site, world: World) -> None:
    page = await site.open("/app", SENIOR, timezone_id="Asia/Shanghai", lang="en")
    await expect(page.locator(".tile[data-code=meal_delivery] .tile-price")).to_have_text("¥25.00")
    await expect(page.locator("#sos-label")).to_have_text("Emergency call")
