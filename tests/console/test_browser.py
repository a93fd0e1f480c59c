"""The console in a real Chromium against a real daemon: live services list, scaling without a reload, a Service's
chart, traces by id, streaming logs, no Secret value in any YAML, hostile text kept as text, apply errors with
their field path, delete with confirmation, and sign-in with a token. Screenshots go to test-output/console/."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from .daemon import Daemon

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SECRET_VALUE = "s3cr3t-Value-4711"
HOSTILE = "<img src=x onerror=window.__pwned=1>"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"
APP = Path(__file__).parent / "app"

in_ci = os.environ.get("CI", "").lower() in ("1", "true")
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(180),
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK) and not in_ci,
                       reason=f"{CHROMIUM} is not installed (make test-install installs Debian's)"),
]

MANIFESTS = f"""
apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: {SECRET_VALUE}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: echo
  annotations:
    wisp.dev/note: "{HOSTILE}"
spec:
  template:
    metadata:
      annotations:
        wisp.dev/workload-class: function
        autoscaling.knative.dev/target: "1"
        autoscaling.knative.dev/window: "6s"
        autoscaling.knative.dev/max-scale: "4"
    spec:
      containers:
        - image: {APP}
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: db
                  key: password
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: to-echo
spec:
  broker: default
  filter:
    attributes:
      type: dev.knative.sources.ping
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: echo
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: tick
spec:
  schedule: "0 0 1 1 *"
  data: once a year
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("console")
    (root / "echo.yaml").write_text(MANIFESTS)
    wisp = Daemon(root / "state", [root / "echo.yaml"], root / "daemon.log")
    try:
        wisp.wait_serving()
        yield wisp
    finally:
        wisp.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test-install` installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(url)
    return page


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / name, full_page=True)


async def request(daemon: Daemon, client: httpx.AsyncClient, **params: str) -> httpx.Response:
    response = await client.get(daemon.ingress + "/", params=params, headers={"Host": "echo.default.localhost"})
    assert response.status_code == 200, response.text
    return response


async def assert_no_markup_ran(page: Page) -> None:
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("main img").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]


async def test_services_list_shows_the_service_and_instances_rise_and_fall_live(daemon: Daemon,
                                                                                browser: Browser) -> None:
    page = await open_page(browser, daemon.api + "/")
    row = page.locator('tr[data-key="default/echo"]')
    await row.wait_for()
    assert await row.locator("a.name").text_content() == "echo"
    url = row.locator("td.url a")
    assert await url.get_attribute("href") == f"http://echo.default.localhost:{daemon.port}/"
    assert await row.locator(".instances .num").get_attribute("aria-label") is not None
    await page.evaluate("window.__sameDocument = true")

    async def load(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                await request(daemon, client, ms="300")

    stop = asyncio.Event()
    workers = [asyncio.create_task(load(stop)) for _ in range(8)]
    try:
        await page.wait_for_function(
            "() => Number(document.querySelector('tr[data-key=\"default/echo\"] .instances .num').textContent) >= 2",
            timeout=45_000)
        await screenshot(page, "services-under-load.png")
    finally:
        stop.set()
        await asyncio.gather(*workers)
    await page.wait_for_function(
        "() => Number(document.querySelector('tr[data-key=\"default/echo\"] .instances .num').textContent) <= 1",
        timeout=60_000)
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened
    await screenshot(page, "services.png")
    await assert_no_markup_ran(page)
    # Keyboard only: Tab from the top reaches the Service's link, Enter opens its page.
    for _ in range(20):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.classList.contains('name')"):
            break
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/ui/services/default/echo")
    await page.close()


async def test_service_page_draws_its_chart_streams_logs_and_keeps_hostile_text_as_text(daemon: Daemon,
                                                                                        browser: Browser) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(5):
            await request(daemon, client)
        page = await open_page(browser, daemon.api + "/ui/services/default/echo")
        await page.locator("#summary dd.value", has_text=HOSTILE).wait_for()
        # The instances chart drew its Ready line (#2b8a3e) on its canvas.
        await page.wait_for_function("""() => {
            const canvas = document.querySelector('#chart-instances canvas');
            if (!canvas) return false;
            const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            let line = 0;
            for (let i = 0; i < data.length; i += 4)
                if (Math.abs(data[i] - 43) < 20 && Math.abs(data[i + 1] - 138) < 20 && Math.abs(data[i + 2] - 62) < 20)
                    line++;
            return line > 50;
        }""", timeout=20_000)
        await page.locator("#pods tr").first.wait_for()
        marker = f"log-line-{secrets.token_hex(4)}"
        await page.locator("#logs").wait_for()
        await request(daemon, client, say=marker)
        await request(daemon, client, say=HOSTILE)
        await page.wait_for_function(f"() => document.querySelector('#logs').textContent.includes({HOSTILE!r})",
                                     timeout=20_000)
        assert marker in (await page.locator("#logs").text_content() or "")
        await screenshot(page, "service.png")
        await assert_no_markup_ran(page)
        await page.close()


async def test_a_trace_sent_with_a_traceparent_is_found_by_id_with_its_ingress_span(daemon: Daemon,
                                                                                    browser: Browser) -> None:
    trace_id = secrets.token_hex(16)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(daemon.ingress + "/", headers={
            "Host": "echo.default.localhost", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        assert response.status_code == 200
    page = await open_page(browser, daemon.api + "/ui/traces")
    await page.fill("#trace-id", trace_id)
    await page.press("#trace-id", "Enter")
    ingress = page.locator('#waterfall tr[data-span="ingress"]')
    await ingress.first.wait_for(timeout=15_000)
    assert trace_id in (await page.locator("#trace-title").text_content() or "")
    await ingress.first.focus()
    await page.keyboard.press("Enter")
    assert await page.locator("#attributes dt", has_text="span id").count() == 1
    await screenshot(page, "traces.png")
    await assert_no_markup_ran(page)
    await page.close()


async def test_yaml_views_never_show_the_secret_value(daemon: Daemon, browser: Browser) -> None:
    for plural, name in (("services", "echo"), ("secrets", "db"), ("revisions", "echo-00001"),
                         ("configurations", "echo")):
        page = await open_page(browser, daemon.api + f"/ui/objects?plural={plural}&namespace=default&name={name}")
        yaml_view = page.locator("#yaml")
        await page.wait_for_function("() => document.querySelector('#yaml').textContent.includes('kind:')")
        text = await yaml_view.text_content() or ""
        assert f"name: {name}" in text
        assert SECRET_VALUE not in text and SECRET_VALUE not in await page.content()
        if plural == "services":
            assert "secretKeyRef" in text
            assert HOSTILE in text  # the annotation, as text
            await screenshot(page, "objects.png")
        await assert_no_markup_ran(page)
        await page.close()


async def test_applying_an_invalid_document_shows_the_field_path_and_delete_asks_first(daemon: Daemon,
                                                                                      browser: Browser) -> None:
    page = await open_page(browser, daemon.api + "/ui/objects?plural=configmaps")
    await page.locator("#kind option").first.wait_for(state="attached")
    await page.fill("#apply-text", """apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: broken
spec:
  template:
    spec:
      containerConcurrency: -3
      containers:
        - image: ghcr.io/example/x:1
""")
    await page.click("#apply")
    field = page.locator("#apply-result code.field")
    await field.first.wait_for()
    assert "containerConcurrency" in (await field.first.text_content() or "")
    await screenshot(page, "apply-invalid.png")
    async with httpx.AsyncClient() as client:
        gone = await client.get(daemon.api + "/apis/serving.knative.dev/v1/namespaces/default/services/broken")
        assert gone.status_code == 404  # nothing half-applied

    await page.fill("#apply-text", f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: doomed
data:
  note: "{HOSTILE}"
""")
    await page.click("#apply")
    await page.locator("#apply-result", has_text="configmap/doomed created").wait_for()
    await page.locator('#object-list button[data-name="doomed"]').click()
    await page.locator("#yaml", has_text="name: doomed").wait_for()
    await page.click("#delete")
    dialog = page.locator("#confirm")
    await dialog.wait_for()
    assert "default/doomed" in (await page.locator("#confirm-text").text_content() or "")
    await page.keyboard.press("Escape")  # cancelled: nothing deleted
    async with httpx.AsyncClient() as client:
        path = daemon.api + "/api/v1/namespaces/default/configmaps/doomed"
        assert (await client.get(path)).status_code == 200
        await page.click("#delete")
        await page.click("#confirm-delete")
        await page.locator("#object-message", has_text="deleted").wait_for()
        assert (await client.get(path)).status_code == 404
    await assert_no_markup_ran(page)
    await page.close()


async def test_eventing_page_shows_source_broker_trigger_subscriber(daemon: Daemon, browser: Browser) -> None:
    page = await open_page(browser, daemon.api + "/ui/eventing")
    flow = page.locator("ol.flow").first
    await flow.wait_for()
    hops = [text.split("\n")[0] for text in await flow.locator("> li").all_inner_texts()]
    assert [h.split(" · ")[0] for h in hops] == ["PingSource", "Broker", "Trigger", "Service"]
    assert "type=dev.knative.sources.ping" in (await flow.inner_text())
    assert await flow.locator("a", has_text="echo").get_attribute("href") == "/ui/services/default/echo"
    await screenshot(page, "eventing.png")
    await assert_no_markup_ran(page)
    await page.close()


@pytest.fixture(scope="module")
def token_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, str]]:
    root = tmp_path_factory.mktemp("console-token")
    token = secrets.token_urlsafe(24)
    wisp = Daemon(root / "state", [], root / "daemon.log", env={"WISP_TOKEN": token})
    try:
        wisp.wait_serving()
        yield wisp, token
    finally:
        wisp.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_with_a_token_the_console_asks_for_it_and_then_works(token_daemon: tuple[Daemon, str],
                                                                   browser: Browser) -> None:
    wisp, token = token_daemon
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(wisp.api + "/ui/objects?plural=configmaps")
    assert "/ui/login" in page.url
    await page.fill("#token", "not-the-token")
    await page.press("#token", "Enter")
    await page.locator(".error", has_text="not the daemon").wait_for()
    await page.fill("#token", token)
    await page.press("#token", "Enter")
    await page.wait_for_url("**/ui/objects?plural=configmaps")
    await page.locator("#kind option").first.wait_for(state="attached")
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["wisp_session"]["httpOnly"] and cookies["wisp_session"]["secure"]
    assert cookies["wisp_session"]["sameSite"] == "Strict" and token not in cookies["wisp_session"]["value"]
    await page.fill("#apply-text", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: signed-in\n")
    await page.click("#apply")  # a change: goes with the CSRF header
    await page.locator("#apply-result", has_text="configmap/signed-in created").wait_for()
    await context.clear_cookies()  # an expired or missing session → the sign-in page, not an error
    await page.click("#refresh")
    await page.wait_for_url("**/ui/login**")
    await screenshot(page, "login.png")
    await context.close()
