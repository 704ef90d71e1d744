"""The caregiver's phone page /care, in Debian's Chromium at 390 x 844: on duty with the
phone's position, an offer arriving live and answered with one tap, check-in at the door
(refused from 3 km away with the distance shown), check-out with a note."""

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.dispatch.geo import haversine_m
from app.models import Offer, Visit
from tests.browser import Site, axe, shot
from tests.factories import HOME, NEAR_HOME, World

# About 3.0 km north of the senior's home (1/1000 degree of latitude is ~111 m).
THREE_KM_AWAY = (HOME[0] + 0.027, HOME[1])
NURSE = "13700000001"


def _where(point: tuple[float, float]) -> dict[str, Any]:
    return {"latitude": point[0], "longitude": point[1], "accuracy": 10}


@pytest.fixture
async def http(site: Site) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=site.base, timeout=10) as client:
        yield client


async def _on_duty_page(site: Site, at: tuple[float, float] = NEAR_HOME) -> Page:
    """The nurse's page, logged in with location allowed, gone on duty with one tap."""
    page = await site.open(
        "/care",
        NURSE,
        geolocation=_where(at),
        permissions=["geolocation"],
        timezone_id="Asia/Shanghai",
    )
    await expect(page.locator("body[data-ready=true]")).to_be_attached()
    await page.get_by_role("button", name="上班接单").click()
    await expect(page.locator("#duty-text")).to_have_text("接单中")
    await expect(page.locator("#position-status")).to_contain_text("正在共享位置")
    return page


async def _place(http: AsyncClient, world: World, service: str = "meal_delivery") -> str:
    r = await http.post(
        "/v1/orders",
        json={"service_code": service},
        headers={**world.senior.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _small_targets(page: Page) -> list[str]:
    """Visible buttons, links and fields smaller than 48 x 48 px (one thumb, walking)."""
    return list(
        await page.evaluate(
            """() => [...document.querySelectorAll('button, a, textarea, input')]
                .filter((n) => !n.classList.contains('skip') && n.getClientRects().length)
                .map((n) => [n, n.getBoundingClientRect()])
                .filter(([n, r]) => r.width < 48 || r.height < 48)
                .map(([n, r]) => `${n.textContent.trim()} ${r.width}x${r.height}`)"""
        )
    )


async def _order_status(http: AsyncClient, world: World, order_id: str) -> str:
    r = await http.get(f"/v1/orders/{order_id}", headers=world.senior.auth)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def _accepted(site: Site, world: World, http: AsyncClient) -> tuple[Page, str]:
    """The nurse's page with an order accepted from it: (page, order id)."""
    page = await _on_duty_page(site)
    order_id = await _place(http, world)
    offer = page.locator("li.offer")
    await offer.get_by_role("button", name="接单", exact=True).click()
    await expect(page.locator("li.visit .check-in")).to_be_visible()
    return page, order_id


async def test_an_offer_arrives_live_and_is_accepted_with_one_tap(
    site: Site, world: World, http: AsyncClient
) -> None:
    page = await _on_duty_page(site)
    await expect(page.locator("#offers-empty")).to_be_visible()
    assert await axe(page) == []
    await shot(page, "care-on-duty")

    order_id = await _place(http, world)
    offer = page.locator("li.offer")
    await expect(offer).to_have_count(1)  # pushed over the event stream, no reload
    await expect(offer.locator("h3")).to_contain_text("送餐上门")
    await expect(offer.locator(".countdown")).to_contain_text(re.compile(r"还剩 \d+ 秒"))
    assert await axe(page) == []
    await shot(page, "care-offer")

    assert await _small_targets(page) == []
    await offer.get_by_role("button", name="接单", exact=True).click()
    await expect(page.locator("#announce")).to_contain_text("已接单")
    await expect(offer).to_have_count(0)
    assert await _order_status(http, world, order_id) == "assigned"

    visit = page.locator("li.visit")
    await expect(visit).to_have_count(1)
    # The address and care notes, now that the visit is hers; a link for the phone's map app.
    await expect(visit.locator(".address")).to_have_text("Room 001, 118 Laodong Road")
    # Her phone number as people write it; the link dials the E.164 form.
    call = visit.locator(".phone a")
    await expect(call).to_contain_text("139 0000 0001")
    assert await call.get_attribute("href") == "tel:+8613900000001"
    assert await _small_targets(page) == []
    navigate = visit.get_by_role("link", name="用地图导航")
    assert (
        await navigate.get_attribute("href")
        == f"geo:{HOME[0]:.6f},{HOME[1]:.6f}?q={HOME[0]:.6f},{HOME[1]:.6f}"
    )
    assert await axe(page) == []
    await shot(page, "care-visit-assigned")


async def test_decline_is_set_apart_from_accept_and_takes_a_second_tap_for_the_reason(
    site: Site,
    world: World,
    http: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    page = await _on_duty_page(site)
    order_id = await _place(http, world)
    offer = page.locator("li.offer")
    await expect(offer).to_have_count(1)
    offer_id = await offer.get_attribute("data-offer-id")

    # Under Accept there is no reason to hit by accident: one quiet "Decline…", well below it.
    reason = offer.get_by_role("button", name="离得太远")
    await expect(reason).to_be_hidden()
    toggle = offer.get_by_role("button", name="不接…")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    accept_box = await offer.get_by_role("button", name="接单", exact=True).bounding_box()
    toggle_box = await toggle.bounding_box()
    assert accept_box is not None
    assert toggle_box is not None
    assert toggle_box["y"] - (accept_box["y"] + accept_box["height"]) >= 40
    assert await toggle.evaluate("(b) => getComputedStyle(b).backgroundColor") != (
        await offer.get_by_role("button", name="接单", exact=True).evaluate(
            "(b) => getComputedStyle(b).backgroundColor"
        )
    )

    # Opened by mistake: closed again, nothing sent, the offer still hers to take.
    await toggle.click()
    await expect(offer.get_by_role("group", name="不接，原因：")).to_be_visible()
    await expect(reason).to_be_focused()
    await offer.get_by_role("button", name="收起，先不拒绝").click()
    await expect(reason).to_be_hidden()
    assert await _order_status(http, world, order_id) == "offered"
    async with sessionmaker() as session:
        still = await session.get(Offer, uuid.UUID(offer_id))
    assert still is not None
    assert still.status.value == "open"

    await toggle.click()
    assert await _small_targets(page) == []
    assert await axe(page) == []
    await shot(page, "care-decline-reasons")
    await reason.click()
    await expect(page.locator("#announce")).to_contain_text("已拒绝：离得太远")
    await expect(offer).to_have_count(0)
    async with sessionmaker() as session:
        declined = await session.get(Offer, uuid.UUID(offer_id))
    assert declined is not None
    assert declined.status.value == "declined"
    assert declined.reason == "离得太远"
    await shot(page, "care-declined")


async def test_check_in_is_refused_far_away_with_the_distance_then_accepted_at_the_door(
    site: Site,
    world: World,
    http: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    page, order_id = await _accepted(site, world, http)
    visit = page.locator("li.visit")
    await page.context.set_geolocation(_where(THREE_KM_AWAY))
    await visit.get_by_role("button", name="到门口签到").click()
    metres = round(haversine_m(*THREE_KM_AWAY, *HOME))
    assert 2950 < metres < 3050
    refused = visit.locator(".card-message")
    await expect(refused).to_have_text(
        f"您离老人家还有 {metres:,} 米。要在门口 150 米以内才能签到，请走近一些再试。"
    )
    await expect(refused).to_have_attribute("role", "alert")
    assert await _order_status(http, world, order_id) == "assigned"
    assert await axe(page) == []
    await shot(page, "care-check-in-too-far")

    await page.context.set_geolocation(_where(HOME))
    await visit.get_by_role("button", name="到门口签到").click()
    await expect(page.locator("#announce")).to_have_text("签到成功，辛苦了。")
    await expect(visit.locator(".badge")).to_have_text("服务中")
    assert await _order_status(http, world, order_id) == "in_progress"
    assert await axe(page) == []
    await shot(page, "care-in-progress")

    await visit.get_by_label("服务记录（可不填）").fill("Lunch delivered; ate well.")
    await visit.get_by_role("button", name="服务完成，签退").click()
    # Seconds into the visit: asked in the card before it ends (confirmed below).
    await visit.get_by_role("button", name="确定结束，签退").click()
    await expect(page.locator("#announce")).to_have_text("已签退，谢谢您！")
    await expect(visit.locator(".badge")).to_have_text("已完成")
    # Once checked out, the address and care notes are no longer hers to see.
    await expect(visit.locator(".address")).to_have_count(0)
    await expect(visit.locator(".care-notes")).to_have_count(0)
    assert await _order_status(http, world, order_id) == "completed"
    async with sessionmaker() as session:
        done = await session.scalar(select(Visit).where(Visit.order_id == uuid.UUID(order_id)))
    assert done is not None
    assert done.end_reason == "Lunch delivered; ate well."
    assert await axe(page) == []
    await shot(page, "care-checked-out")


async def test_going_on_duty_with_location_blocked_says_so_plainly(
    site: Site, world: World
) -> None:
    page = await site.open("/care", NURSE, timezone_id="Asia/Shanghai")  # location not allowed
    await expect(page.locator("#duty-text")).to_have_text("已下班")
    assert await axe(page) == []
    await shot(page, "care-off-duty")
    await page.get_by_role("button", name="上班接单").click()
    await expect(page.locator("#duty-text")).to_have_text("接单中")
    status = page.locator("#position-status")
    await expect(status).to_contain_text("定位被关闭了。没有位置就收不到派单")
    await expect(page.get_by_role("button", name="重试")).to_be_visible()
    assert await axe(page) == []
    await shot(page, "care-location-blocked")


# Counts the tones the page plays and the vibrations it asks for (the page makes its sound with
# the Web Audio API; nothing is fetched).
RINGS = """
window.__rings = { tones: 0, vibrations: [] };
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__rings.tones += 1;
  return start.apply(this, args);
};
Object.defineProperty(Navigator.prototype, "vibrate", {
  configurable: true,
  value: (pattern) => { window.__rings.vibrations.push(pattern); return true; },
});
"""


async def test_an_sos_offer_rings_vibrates_and_counts_down(
    site: Site, world: World, http: AsyncClient
) -> None:
    page = await _on_duty_page(site)
    await page.add_init_script(RINGS)
    await page.reload()  # still on duty: the page picks the shift up where it was
    await expect(page.locator("#duty-text")).to_have_text("接单中")
    await expect(page.locator("body[data-ready=true]")).to_be_attached()

    r = await http.post("/v1/sos", headers=world.senior.auth)
    assert r.status_code == 201, r.text
    offer = page.locator("li.offer.sos")
    await expect(offer).to_have_count(1)
    await expect(offer.locator(".tag")).to_have_text("SOS 紧急求助")
    seconds = offer.locator(".seconds")
    await expect(seconds).to_have_text(re.compile(r"还剩 \d+ 秒可以接单"))
    first = int(re.findall(r"\d+", await seconds.inner_text())[0])
    assert first <= 20  # an SOS offer's short deadline
    await expect(seconds).not_to_have_text(f"还剩 {first} 秒可以接单")  # it counts down
    rings = await page.evaluate("window.__rings")
    assert rings["tones"] >= 6  # three rounds of the two-tone chime for an emergency
    assert rings["vibrations"] == [[300, 120, 300, 120, 300]]
    assert await axe(page) == []
    await shot(page, "care-sos-offer")


async def test_position_reports_are_throttled_while_moving(site: Site, world: World) -> None:
    page = await site.open(
        "/care",
        NURSE,
        geolocation=_where(NEAR_HOME),
        permissions=["geolocation"],
        timezone_id="Asia/Shanghai",
    )
    await page.clock.install()  # time runs as usual, and the test can jump it ahead
    await page.reload()
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.post_data_json)
            if request.method == "PUT" and request.url.endswith("/v1/caregivers/me/position")
            else None
        ),
    )
    await page.get_by_role("button", name="上班接单").click()
    await expect(page.locator("#position-status")).to_contain_text("正在共享位置")
    assert [round(s["lat"], 4) for s in sent] == [NEAR_HOME[0]]  # at once on going on duty

    last = NEAR_HOME
    for step in range(1, 6):  # walking fast: a new fix every 200 ms
        last = (HOME[0] + step * 0.001, HOME[1])
        await page.context.set_geolocation(_where(last))
        await page.wait_for_timeout(200)
    await page.wait_for_timeout(300)
    assert len(sent) == 1  # not one report per fix

    async with page.expect_request(
        lambda request: request.method == "PUT" and "/me/position" in request.url
    ) as report:
        await page.clock.run_for(16_000)  # the next report: the latest fix only
    data = (await report.value).post_data_json
    assert round(data["lat"], 4) == round(last[0], 4)


async def test_the_page_in_english(site: Site, world: World) -> None:
    page = await site.open(
        "/care",
        NURSE,
        lang="en",
        geolocation=_where(NEAR_HOME),
        permissions=["geolocation"],
    )
    await page.get_by_role("button", name="Go on duty").click()
    await expect(page.locator("#duty-text")).to_have_text("On duty")
    await expect(page.locator("#position-status")).to_contain_text("Sharing your location")
    await expect(page.get_by_role("heading", name="Today's visits")).to_be_visible()
    assert await axe(page) == []
    await shot(page, "care-on-duty-en")


async def test_checking_out_before_half_the_planned_time_asks_first_in_the_card(
    site: Site, world: World, http: AsyncClient
) -> None:
    page, order_id = await _accepted(site, world, http)
    visit = page.locator("li.visit")
    await page.context.set_geolocation(_where(HOME))
    await visit.get_by_role("button", name="到门口签到").click()
    await expect(visit.locator(".badge")).to_have_text("服务中")
    planned = await _planned_minutes(http, world, order_id)

    check_out = visit.get_by_role("button", name="服务完成，签退")
    await visit.get_by_label("服务记录（可不填）").fill("Only dropped by.")
    await check_out.click()
    question = visit.get_by_role("group", name=re.compile("确定结束服务"))
    await expect(question).to_have_text(
        re.compile(rf"^计划 {planned} 分钟，才过了不到 1 分钟。确定结束服务？")
    )
    await expect(page.get_by_role("dialog")).to_have_count(0)  # in the card, no pop-up
    await expect(check_out).to_be_hidden()
    assert await _order_status(http, world, order_id) == "in_progress"  # nothing sent yet
    assert await _small_targets(page) == []
    assert await axe(page) == []
    await shot(page, "care-check-out-early")

    # Back: the visit goes on, the note still there.
    await question.get_by_role("button", name="返回，继续服务").click()
    await expect(question).to_have_count(0)
    await expect(check_out).to_be_focused()
    await expect(visit.get_by_label("服务记录（可不填）")).to_have_value("Only dropped by.")
    assert await _order_status(http, world, order_id) == "in_progress"

    await check_out.click()
    await question.get_by_role("button", name="确定结束，签退").click()
    await expect(page.locator("#announce")).to_have_text("已签退，谢谢您！")
    assert await _order_status(http, world, order_id) == "completed"


async def test_checking_out_after_half_the_planned_time_asks_nothing(
    site: Site,
    world: World,
    http: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    page, order_id = await _accepted(site, world, http)
    visit = page.locator("li.visit")
    await page.context.set_geolocation(_where(HOME))
    await visit.get_by_role("button", name="到门口签到").click()
    await expect(visit.locator(".badge")).to_have_text("服务中")
    planned = await _planned_minutes(http, world, order_id)
    # As if she had checked in just over half the planned time ago.
    async with sessionmaker() as session:
        row = await session.scalar(select(Visit).where(Visit.order_id == uuid.UUID(order_id)))
        assert row is not None
        assert row.checked_in_at is not None
        row.checked_in_at -= timedelta(minutes=planned / 2 + 1)
        await session.commit()
    await page.reload()
    await expect(page.locator("body[data-ready=true]")).to_be_attached()

    await visit.get_by_role("button", name="服务完成，签退").click()
    await expect(page.locator("#announce")).to_have_text("已签退，谢谢您！")
    await expect(visit.locator(".early")).to_have_count(0)
    assert await _order_status(http, world, order_id) == "completed"


async def _planned_minutes(http: AsyncClient, world: World, order_id: str) -> int:
    """The order's planned minutes on site, as the caregiver's visit shows them."""
    r = await http.get(f"/v1/orders/{order_id}", headers=world.senior.auth)
    assert r.status_code == 200, r.text
    return int(r.json()["duration_min"])
