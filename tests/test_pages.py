"""The pages every role shares: the front door, log-in and log-out, language, the API docs —
in Debian's Chromium, with nothing reachable but the app."""

from playwright.async_api import expect

from tests.browser import DESK, Site, axe, shot
from tests.factories import World


async def test_the_front_door_leads_each_role_to_its_page(site: Site) -> None:
    page = await site.open("/")
    await expect(page.locator("h1")).to_have_text("居家养老，服务上门")
    assert await page.locator("html").get_attribute("lang") == "zh-CN"
    assert await axe(page) == []
    await shot(page, "home")
    await page.click("a[href='/app']")
    await expect(page.locator("#login")).to_be_visible()


async def test_a_wrong_password_says_so_and_keeps_the_form(site: Site, world: World) -> None:
    page = await site.open("/app")
    await page.fill("#login", "13900000001")
    await page.fill("#password", "wrong")
    await page.click("form.login button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("手机号或密码不对，请再试一次。")
    await expect(page.locator("#login")).to_have_value("13900000001")
    assert await axe(page) == []
    await shot(page, "login-error")


async def test_each_role_logs_in_to_its_page_and_out_again(site: Site, world: World) -> None:
    for path, login in (("/app", "13900000001"), ("/care", "13700000001"), ("/ops", "op.a")):
        page = await site.open(path, login)
        assert page.url.endswith(path)
        await page.click("text=退出登录")
        await expect(page.locator("#login")).to_be_visible()
        # The session is over, not just forgotten by this page: its API calls are refused.
        r = await page.request.get("/v1/auth/me")
        assert r.status == 401


async def test_a_page_for_another_role_asks_for_the_right_account(site: Site, world: World) -> None:
    page = await site.open("/app", "13900000001")
    await page.goto("/ops")
    await expect(page.locator("[role=status]")).to_contain_text("其他类型的账号")


async def test_english_is_one_tap_away_and_remembered(site: Site, world: World) -> None:
    page = await site.open("/app")
    await page.click("text=English")
    await expect(page.locator("h1")).to_have_text("Log in to order care")
    await page.goto("/care")
    await expect(page.locator("h1")).to_have_text("Caregiver log-in")
    assert await page.locator("html").get_attribute("lang") == "en"


async def test_the_api_docs_render_offline(site: Site) -> None:
    page = await site.open("/docs", viewport=DESK)
    await expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    await expect(page.get_by_text("/v1/auth/session", exact=True).first).to_be_visible()
    await shot(page, "docs")
    # ReDoc's packaged script would fetch its logo from a CDN: not served.
    r = await page.request.get("/redoc")
    assert r.status == 404
