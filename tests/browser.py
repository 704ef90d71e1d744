"""Browser tests' plumbing (a pytest plugin): Debian's Chromium driven by Playwright, the whole
service on a loopback port with a dispatcher beside it, axe-core, and screenshots.

- Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it).
  Playwright never downloads a browser here; a missing Chromium *fails* the page tests.
- Every page runs with the network to anything but the app cut off: a request elsewhere is
  aborted, recorded, and fails the test.
- Screenshots go to ``$DOORSTEP_TEST_OUTPUT`` (default ``var/test-output``)/screenshots.
"""

import asyncio
import functools
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from app.bench.console import CHROMIUM_ARGS
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.dispatcher.loop import Dispatcher
from app.main import create_app
from tests.factories import PASSWORD

ROOT = Path(__file__).parent.parent
CHROMIUM = Path(os.environ.get("DOORSTEP_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / ".tools" / "axe-core-4.14.1.min.js"
OUTPUT = Path(os.environ.get("DOORSTEP_TEST_OUTPUT", ROOT / "var" / "test-output"))
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1440, "height": 900}


def _chromium() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"the page tests need Chromium at {CHROMIUM}: apt-get install chromium")
    return str(CHROMIUM)


@functools.cache
def _axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: make fetches it (python -m tests.fetch_axe)")
    return AXE.read_text()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@dataclass
class Site:
    """The running service and the pages opened on it."""

    base: str
    app: FastAPI
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    # Requests a page tried to send anywhere but the app (all aborted).
    foreign: list[str] = field(default_factory=list)

    async def context(self, viewport: dict[str, int] = PHONE, **options: Any) -> BrowserContext:
        """A fresh browser profile (its own cookies), cut off from everything but the app."""
        context = await self.browser.new_context(
            base_url=self.base, viewport=viewport, locale="zh-CN", **options
        )
        context.set_default_timeout(10_000)

        async def abort(route: Any) -> None:
            self.foreign.append(route.request.url)
            await route.abort()

        await context.route(lambda url: not url.startswith(self.base), abort)
        self.contexts.append(context)
        return context

    async def open(
        self,
        path: str,
        login: str | None = None,
        *,
        viewport: dict[str, int] = PHONE,
        lang: str | None = None,
        **options: Any,
    ) -> Page:
        """A page at ``path`` (``/app``, ``/care``, ``/ops``), logged in through its own
        form when ``login`` is given."""
        context = await self.context(viewport, **options)
        page = await context.new_page()
        await page.goto(path + (f"?lang={lang}" if lang else ""))
        if login is not None:
            await page.fill("#login", login)
            await page.fill("#password", PASSWORD)
            await page.click("form.login button[type=submit]")
            await page.wait_for_selector("meta[name=csrf-token]", state="attached")
        return page


@pytest.fixture
async def site(settings: Settings, clean: None, browser: Browser) -> AsyncIterator[Site]:
    """The whole service on a loopback port with a dispatcher beside it (quick timers), as
    ``doorstep run`` serves it, on the suite's database."""
    fast = settings.model_copy(
        update={"dispatch_poll_s": 0.2, "stream_poll_s": 0.1, "leader_retry_s": 0.2}
    )
    application = create_app(fast)
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    engine = create_engine(fast)
    dispatcher = asyncio.create_task(Dispatcher(create_sessionmaker(engine), fast).run())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    running = Site(f"http://127.0.0.1:{port}", application, browser)
    try:
        yield running
    finally:
        # Each step is bounded: one stuck browser context or connection must not hold the
        # whole suite (it is said on stderr, with the step's name).
        for context in running.contexts:
            await _bounded("closing a browser context", context.close())
        dispatcher.cancel()
        await _bounded(
            "stopping the dispatcher", asyncio.gather(dispatcher, return_exceptions=True)
        )
        await _bounded("disposing the dispatcher's engine", engine.dispose())
        server.should_exit = True
        if not await _bounded("stopping uvicorn", asyncio.shield(serving)):
            server.force_exit = True  # stop waiting for open connections and tasks
            await _bounded("forcing uvicorn to stop", serving)
    assert running.foreign == [], "a page reached outside the app"


async def _bounded(what: str, step: Awaitable[object], seconds: float = 15) -> bool:
    """Await ``step`` for at most ``seconds``; False (and a line on stderr) if it took longer."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        print(f"page tests: {what} took over {seconds:.0f} s; going on", file=sys.stderr)
        return False
    return True


async def axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.2 A/AA and
    best practice), each as ``{"id", "impact", "help", "targets"}``."""
    # Colours are judged at rest, not halfway through a transition.
    await page.evaluate(
        """Promise.all(document.getAnimations()
            .filter(a => a.effect && a.effect.getComputedTiming().endTime !== Infinity)
            .map(a => a.finished))"""
    )
    # Evaluated, not injected as a <script>: the pages' CSP allows no inline script.
    await page.evaluate(_axe_source())
    result = await page.evaluate(
        """async () => (await axe.run(document, {
            runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'],
        })).violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                  targets: v.nodes.map(n => n.target.join(' '))}))"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def shot(page: Page, name: str) -> Path:
    """A full-page screenshot under the test output folder."""
    path = OUTPUT / "screenshots" / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    await page.screenshot(path=str(path), full_page=True)  # makes the folders
    return path
