"""The operator console /ops in Debian's Chromium on a desk screen (1440 x 900): the live queue
with the SOS alert, the map, today's KPIs, and working an order with the keyboard alone."""

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal
from app.models import Role
from app.security import create_access_token
from app.services import accounts
from tests.browser import DESK, Site, axe, shot
from tests.factories import FAR, HOME, Person, World, caregiver_in, ready

XIAN = ZoneInfo("Asia/Shanghai")


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
    first_candidate = detail.locator("[data-candidate]").first
    await expect(first_candidate).to_contain_text("Nurse Zhang")
    # Who to phone (dialled in E.164, shown as people write it), and whose caregiver they
    # are: namesakes are told apart.
    await expect(first_candidate.locator("a[href='tel:+8613700000001']")).to_have_text(
        "137 0000 0001"
    )
    await expect(first_candidate.locator(".cand-provider")).to_have_text("Anxin Care")
    await expect(detail.locator(".decision.k-escalate")).to_contain_text("转人工")
    # Why, in the console's language (from the decision's code and counts, not the English).
    off_duty = re.compile(r"本区 \d+ 位护理员都不在岗。")
    await expect(detail.locator(".decision.k-escalate .reason")).to_contain_text(off_duty)
    await expect(detail.locator(".facts")).to_contain_text(off_duty)
    await expect(detail).not_to_contain_text("on duty")
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
    # A closed order has no timer, and its visit is not "under way".
    await expect(page.locator("#detail .facts")).not_to_contain_text("剩余时间")
    await expect(page.locator("#detail .facts")).not_to_contain_text("服务进行中")
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


async def test_a_new_sos_takes_the_banner_and_sounds_again(
    site: Site, world: World, http: AsyncClient
) -> None:
    page = await console(site)
    await page.click("#sound")  # the desk turns the sound on (a gesture lets it play)
    sound = page.locator("#sound")
    await expect(sound).to_have_attribute("data-state", "on")
    await expect(sound).to_have_attribute("data-played", "1")  # the test tone
    first = await sos(http, world.senior.auth)
    banner = page.locator("#alert")
    await expect(banner.locator(".alert-what")).to_contain_text("Senior 0001", timeout=2000)
    await expect(banner).to_have_attribute("data-order-id", first["id"])
    await expect(sound).to_have_attribute("data-played", "2")
    await page.click("#alert .alert-ack")  # silenced: until the next alert

    second = await sos(http, world.neighbour.auth)

    # The newest SOS is named at once; the older one is counted among the others.
    await expect(banner.locator(".alert-what")).to_contain_text("Neighbour Chen", timeout=2000)
    await expect(banner).to_have_attribute("data-order-id", second["id"])
    await expect(banner.locator(".alert-more")).to_have_text("另有 1 条警报（紧急呼叫 1 条）")
    await expect(sound).to_have_attribute("data-played", "3")
    await shot(page, "ops-second-sos")
    await page.click("#alert .alert-open")
    await expect(page.locator("#detail-title")).to_contain_text("Neighbour Chen")


async def test_a_window_on_another_day_shows_its_day(
    site: Site, world: World, http: AsyncClient
) -> None:
    today = datetime.now(XIAN).date()
    tomorrow = today + timedelta(days=1)
    later = await place(
        http,
        world.senior.auth,
        service_code="cleaning",
        window_start=datetime.combine(tomorrow, time(9), XIAN).isoformat(),
        window_end=datetime.combine(tomorrow, time(11), XIAN).isoformat(),
    )
    page = await console(site)
    when = row(page, later["id"]).locator(".c-service .hood")
    await expect(when).to_have_text("明天 09:00–11:00")


class TestOneSosOfferAtATime:
    """An SOS offered one caregiver at a time, so a later round's search sets aside the one
    asked before (counted with the senior's own blocks)."""

    @pytest.fixture(autouse=True)
    def one_offer_at_a_time(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        # Autouse: set before the site (and its dispatcher) copies the settings.
        monkeypatch.setattr(settings, "emergency_offers", 1)

    async def test_the_examined_count_says_asked_already(
        self,
        site: Site,
        world: World,
        http: AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        operator = Principal(
            id=world.operator_a.id, role=Role.operator, district_id=world.district_a
        )
        async with sessionmaker() as session, session.begin():
            other = await accounts.create_caregiver(
                session,
                operator,
                caregiver_in(
                    world.provider_a.id, "13510000021", datetime.now(UTC), name="Second Ma"
                ),
            )
        token = create_access_token(settings, account_id=other.id, role=Role.caregiver)[0]
        await ready(http, Person(other.id, token), at=FAR)
        await ready(http, world.nurse)  # the nearest: asked first
        order = await sos(http, world.senior.auth)
        offer = await open_offer(http, world.nurse.auth)
        r = await http.post(
            f"/v1/offers/{offer['id']}/decline",
            json={"reason": "flat tyre"},
            headers=world.nurse.auth,
        )
        assert r.status_code == 200, r.text
        await open_offer(http, {"Authorization": f"Bearer {token}"})  # the second round

        page = await console(site)
        await row(page, order["id"]).click()
        rounds = page.locator("#detail .decision.k-emergency")
        await expect(rounds).to_have_count(2)
        latest = rounds.first  # newest first
        await expect(latest.locator("li[data-rule=blocked]")).to_have_text("已问过或被老人拒绝: 1")
        await latest.scroll_into_view_if_needed()
        await shot(page, "ops-sos-second-round")


async def open_offer(http: AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    """The caregiver's open offer, once the dispatcher has made it (waits up to 30 s: a
    loaded machine is slow, not wrong)."""
    for _ in range(300):
        r = await http.get("/v1/offers?status=open", headers=auth)
        assert r.status_code == 200, r.text
        if r.json()["items"]:
            return r.json()["items"][0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError("no open offer")


async def test_sos_on_top_of_the_map_and_nothing_covers_anything(
    site: Site, world: World, http: AsyncClient
) -> None:
    # Both caregivers stand exactly where the map shows the senior's home.
    spot = (round(HOME[0], 3), round(HOME[1], 3))
    await ready(http, world.nurse, at=spot)
    await ready(http, world.helper, at=spot)
    order = await sos(http, world.senior.auth)
    page = await console(site)
    svg = page.locator("#map svg")
    marker = svg.locator(f"[data-order-id='{order['id']}']")
    await expect(marker).to_have_count(1)
    await expect(svg.locator("[data-caregiver-id]")).to_have_count(2)

    # The SOS is what a click at its centre reaches.
    box = await marker.locator("rect").bounding_box()
    assert box is not None
    hit = await page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('[data-order-id]')?.dataset.orderId",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert hit == order["id"]
    # No marker covers another, and no name covers a marker or another name.
    boxes = await page.evaluate(
        """() => [...document.querySelectorAll(
            '#map .mk rect, #map .mk.cg path, #map .mk.cg circle, #map .labels text')]
            .map((n) => { const b = n.getBoundingClientRect();
                          return [b.left, b.top, b.right, b.bottom]; })"""
    )
    assert len(boxes) == 5
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert (
                min(a[2], b[2]) - max(a[0], b[0]) <= 0.5 or min(a[3], b[3]) - max(a[1], b[1]) <= 0.5
            ), (a, b)
    await shot(page, "ops-map-crowded")
