"""Two people, two pages, one order: what issue 10 promises end to end in Debian's Chromium.

- A senior orders a meal on her phone; the offer arrives live on the caregiver's phone, who
  accepts it with one tap; the senior's page then names who is coming — nobody reloads.
- A senior holds SOS while nobody is on duty; the duty desk's console raises its alert within
  2 s, and the senior's SOS screen says that the desk has her call.
"""

import time

from playwright.async_api import Page, expect

from tests.browser import DESK, Site, shot
from tests.factories import NEAR_HOME, World

SHANGHAI = {"timezone_id": "Asia/Shanghai"}


async def senior_page(site: Site) -> Page:
    page = await site.open("/app", "13900000001", **SHANGHAI)
    await expect(page.locator(".tile[data-code=meal_delivery]")).to_be_visible()
    return page


async def nurse_on_duty(site: Site) -> Page:
    page = await site.open(
        "/care",
        "13700000001",
        geolocation={"latitude": NEAR_HOME[0], "longitude": NEAR_HOME[1], "accuracy": 10},
        permissions=["geolocation"],
        **SHANGHAI,
    )
    await expect(page.locator("body[data-ready=true]")).to_be_attached()
    await page.get_by_role("button", name="上班接单").click()
    await expect(page.locator("#position-status")).to_contain_text("正在共享位置")
    return page


async def test_a_meal_ordered_on_one_phone_is_accepted_on_another_and_named_on_the_first(
    site: Site, world: World
) -> None:
    nurse = await nurse_on_duty(site)
    senior = await senior_page(site)

    await senior.click(".tile[data-code=meal_delivery]")
    await senior.click("[data-window=asap]")
    await senior.click("#to-confirm")
    await senior.click("#place")
    card = senior.locator(".order").first
    await expect(card.locator(".order-title")).to_have_text("送餐上门")

    offer = nurse.locator("li.offer")
    await expect(offer).to_have_count(1)  # arrived over the event stream
    await shot(nurse, "journey-caregiver-offer")
    await offer.get_by_role("button", name="接单", exact=True).click()
    await expect(nurse.locator("li.visit .check-in")).to_be_visible()

    # The senior's page follows: the caregiver by name and initial, and when she will come.
    await expect(card.locator(".person-name")).to_contain_text("Nurse Zhang")
    await expect(card.locator(".initial")).to_have_text("N")
    await expect(card.locator(".person-line")).to_be_visible()
    await expect(card).to_have_attribute("data-status", "assigned")
    await shot(senior, "journey-senior-assigned")


async def test_a_held_sos_reaches_the_duty_desk_within_two_seconds(
    site: Site, world: World
) -> None:
    desk = await site.open("/ops", "op.a", viewport=DESK, **SHANGHAI)
    await expect(desk.locator("#conn[data-state=live]")).to_be_attached()
    senior = await senior_page(site)

    box = await senior.locator("#sos").bounding_box()
    assert box is not None
    await senior.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    async with senior.expect_response("**/v1/sos") as pressed:
        await senior.mouse.down()
        await senior.wait_for_timeout(1_800)
        await senior.mouse.up()
    assert (await pressed.value).ok
    sent = time.monotonic()

    alert = desk.locator("#alert")
    await expect(alert).to_be_visible(timeout=2_000)
    await expect(alert).to_contain_text("紧急呼叫")
    await expect(alert).to_contain_text("Senior 0001")
    print(f"SOS → console alert: {time.monotonic() - sent:.2f} s")
    await shot(desk, "journey-desk-sos-alert")
    # Nobody is on duty: the senior is told that the duty desk has her call.
    await expect(senior.locator("#sos-status")).to_contain_text("值班台")
    await shot(senior, "journey-senior-sos-desk")
