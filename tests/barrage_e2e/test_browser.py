"""The barrage page in a real Chromium against `wisp up`: Send makes bullets fly, text stays text, bad input is
refused on the page with the reason and nothing reaches Kafka."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Dialog, Page, Response, async_playwright

from .demo import DemoConfig, Wisp, produced_ids, running_demo

CHROMIUM = "/usr/bin/chromium"
XSS = "<img src=x onerror=alert(1)>"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--host-resolver-rules=MAP *.localhost 127.0.0.1"]

pytestmark = [
    pytest.mark.timeout(180),  # the demo is requested before the browser: the page closes before the daemon drains
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK) and os.environ.get("CI", "").lower() not in ("1", "true"),
                       reason=f"{CHROMIUM} is not installed (make test-install installs Debian's)"),
]


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def demo(tmp_path: Path, kafka_bootstrap: str, sqlite_url: str) -> AsyncIterator[tuple[Wisp, DemoConfig]]:
    cfg = DemoConfig(kafka=kafka_bootstrap, table_url=sqlite_url)
    async with running_demo(tmp_path, cfg) as wisp:
        yield wisp, cfg


async def open_page(browser: Browser, wisp: Wisp) -> tuple[Page, list[Dialog], list[int]]:
    """The page by its own host name; records dialogs and the statuses of every /api/send answer."""
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    dialogs: list[Dialog] = []
    sends: list[int] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog)
        await dialog.dismiss()

    def on_response(response: Response) -> None:
        if response.url.endswith("/api/send"):
            sends.append(response.status)

    page.on("dialog", on_dialog)
    page.on("response", on_response)
    await page.goto(wisp.page_url)
    assert await page.title() == "Barrage"
    return page, dialogs, sends


async def submit(page: Page, message: str, concurrency: str, duration: str) -> None:
    await page.fill("#message", message)
    await page.fill("#concurrency", concurrency)
    await page.fill("#duration", duration)
    await page.click("#send")


def save_screenshot(tmp_path: Path, name: str) -> Path:
    """Kept under test-output/ (ignored by git) as well as the test's tmp dir, and the path printed."""
    target = Path(__file__).resolve().parents[2] / "test-output" / "barrage_e2e"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / name, target / name)
    print(f"screenshot: {target / name}")
    return target / name


async def test_send_flies_across_the_stage(tmp_path: Path, demo: tuple[Wisp, DemoConfig], browser: Browser) -> None:
    wisp, _ = demo
    page, dialogs, sends = await open_page(browser, wisp)
    await submit(page, "hello from chromium", "4", "3")
    bullet = page.locator("#stage .bullet", has_text="hello from chromium").first
    await bullet.wait_for(state="visible", timeout=30_000)
    box = await bullet.bounding_box()
    assert box is not None
    stage = await page.locator("#stage").bounding_box()
    assert stage is not None and stage["y"] <= box["y"] < stage["y"] + stage["height"]
    # It moves right to left: wait (on the page's own clock) until it is clearly left of where it was.
    handle = await bullet.element_handle()
    await page.wait_for_function("([el, x]) => el.getBoundingClientRect().x < x - 50", arg=[handle, box["x"]],
                                 timeout=15_000)
    moved = await bullet.bounding_box()
    assert moved is not None and moved["x"] < box["x"] - 50
    await page.locator("#status", has_text="done").wait_for(timeout=30_000)
    await page.screenshot(path=str(tmp_path / "barrage-flying.png"))
    save_screenshot(tmp_path, "barrage-flying.png")
    assert int(await page.text_content("#sent") or 0) >= 4 * 3 * 10
    assert sends == [200] and dialogs == []


async def test_markup_is_shown_as_text(tmp_path: Path, demo: tuple[Wisp, DemoConfig], browser: Browser) -> None:
    wisp, _ = demo
    page, dialogs, sends = await open_page(browser, wisp)
    await submit(page, XSS, "1", "1")
    bullet = page.locator("#stage .bullet", has_text=XSS).first
    await bullet.wait_for(state="visible", timeout=30_000)
    assert await bullet.text_content() == XSS
    await page.locator("#status", has_text="done").wait_for(timeout=30_000)
    assert await page.locator("img").count() == 0
    assert dialogs == [] and sends == [200]
    await page.screenshot(path=str(tmp_path / "barrage-markup.png"))
    save_screenshot(tmp_path, "barrage-markup.png")


BAD_INPUTS = [
    ("", "4", "3", "Message is empty"),
    ("x" * 201, "4", "3", "longer than 200"),
    ("hi", "0", "3", "Concurrency must be a whole number from 1 to 100"),
    ("hi", "101", "3", "Concurrency must be a whole number from 1 to 100"),
    ("hi", "", "3", "Concurrency must be a whole number from 1 to 100"),
    ("hi", "4", "0", "Duration must be a whole number from 1 to 60 seconds"),
    ("hi", "4", "61", "Duration must be a whole number from 1 to 60 seconds"),
    ("hi", "4", "2.5", "Duration must be a whole number from 1 to 60 seconds"),
]


async def test_bad_input_is_refused_with_the_reason(demo: tuple[Wisp, DemoConfig], browser: Browser) -> None:
    wisp, cfg = demo
    page, dialogs, sends = await open_page(browser, wisp)
    for message, concurrency, duration, reason in BAD_INPUTS:
        await page.evaluate("document.getElementById('error').textContent = ''")
        await submit(page, message, concurrency, duration)
        await page.locator("#error", has_text=reason).wait_for(timeout=15_000)
        await page.locator("#send:enabled").wait_for(timeout=15_000)
    assert sends == [400] * len(BAD_INPUTS)
    assert await page.text_content("#sent") == "0"
    assert dialogs == []
    assert await produced_ids(cfg.kafka, cfg.topic) == []  # nothing reached Kafka
    async with httpx.AsyncClient(timeout=30) as client:
        assert await wisp.ready_pods(client) == 1
