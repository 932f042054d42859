"""EvPower's HTML pages in a real headless Chromium, as a person sees them. The simulated
O!Dengi invoice page: the QR image loads under the page's CSP and encodes the invoice's payment
link; Pay pays; the balance rises by exactly the amount, read through the API. /docs: Swagger UI
renders from this origin alone."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.browser.chromium import chromium, chromium_or_skip, console_errors
from tests.payments.live import LiveSystem, live_system

pytestmark = pytest.mark.integration

SAFETY_S = 60.0  # a safety net for page loads and the payment, never a timing assertion
# Set to a folder (e.g. docs) to keep a screenshot of the page before and after Pay.
SCREENSHOTS = os.environ.get("EVPOWER_SCREENSHOTS_DIR")

# The QR as the browser decoded it: drawn on a canvas, turned into one grey byte per pixel.
READ_QR_PIXELS = """
const img = document.querySelector("img");
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext("2d");
context.drawImage(img, 0, 0);
const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
let grey = "";
for (let i = 0; i < rgba.length; i += 4) {
  grey += String.fromCharCode(Math.round((rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3));
}
return [canvas.width, canvas.height, btoa(grey)];
"""


@pytest.fixture
async def live(
    temporal_env: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[LiveSystem]:
    chromium_or_skip()
    async with live_system(temporal_env.client, db_sessions) as system:
        yield system


def decode_qr(width: int, height: int, grey: bytes) -> list[str]:
    import zxingcpp

    image = memoryview(grey).cast("B", (height, width))
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def wait_for(driver: Any, script: str) -> Any:
    """Poll a page condition (inside the browser thread) until it is truthy."""
    deadline = time.monotonic() + SAFETY_S
    while not (value := driver.execute_script(script)):
        if time.monotonic() > deadline:
            raise AssertionError(f"page never satisfied: {script}")
        time.sleep(0.1)
    return value


def screenshot(driver: Any, name: str) -> None:
    if SCREENSHOTS:
        driver.save_screenshot(str(Path(SCREENSHOTS) / name))


def look_at_invoice(driver: Any, url: str) -> dict[str, Any]:
    driver.get(url)
    wait_for(driver, "const i = document.querySelector('img'); return i && i.complete;")
    width, height, grey = driver.execute_script(READ_QR_PIXELS)
    screenshot(driver, "invoice-page.png")
    return {
        "natural_width": driver.execute_script("return document.querySelector('img').naturalWidth"),
        "text_align": driver.execute_script("return getComputedStyle(document.body).textAlign"),
        "qr": decode_qr(width, height, base64.b64decode(grey)),
        "errors": console_errors(driver),
    }


def press_pay(driver: Any) -> dict[str, Any]:
    driver.find_element("css selector", "form button[type=submit]").click()
    wait_for(driver, "return document.body.innerText.includes('webhook answered');")
    screenshot(driver, "invoice-paid.png")
    return {"text": driver.execute_script("return document.body.innerText"), "errors": []}


async def test_pay_in_a_real_browser_raises_the_balance_by_exactly_the_amount(
    live: LiveSystem,
) -> None:
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 25_000)
    before = (await live.http.get("/api/v1/balance/current", headers=live.auth(client_id))).json()

    with chromium() as driver:
        # Selenium blocks; the app under test serves from this event loop, so drive the
        # browser from a thread.
        page = await asyncio.to_thread(look_at_invoice, driver, created["qr_url"])
        assert page["errors"] == []  # no CSP refusal, no failed load
        assert page["natural_width"] > 0  # the QR image loaded and decoded
        assert page["text_align"] == "center"  # the page's own style applied
        assert page["qr"] == [created["qr_url"]]  # the QR is the invoice's payment link
        paid = await asyncio.to_thread(press_pay, driver)
        assert "webhook answered HTTP 200" in paid["text"]
        assert console_errors(driver) == []  # the form submitted under form-action 'self'

    status = await live.wait_state(client_id, created["topup_id"])
    assert status["state"] == "paid"
    after = (await live.http.get("/api/v1/balance/current", headers=live.auth(client_id))).json()
    assert after["available_tyiyn"] - before["available_tyiyn"] == 25_000


def look_at_docs(driver: Any, url: str) -> dict[str, Any]:
    driver.get(url)
    count = wait_for(driver, "return document.querySelectorAll('.opblock').length;")
    screenshot(driver, "docs-page.png")
    return {
        "operations": count,
        "title": driver.execute_script("return document.querySelector('.title').innerText"),
        "errors": console_errors(driver),
    }


async def test_docs_render_swagger_ui_from_this_origin_under_its_csp(
    temporal_env: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    chromium_or_skip()
    async with live_system(temporal_env.client, db_sessions, enable_swagger=True) as system:
        with chromium(1100, 900) as driver:
            docs = await asyncio.to_thread(look_at_docs, driver, f"{system.base_url}/docs")
    assert docs["errors"] == []  # nothing refused by the CSP, nothing fetched elsewhere
    assert docs["operations"] > 10 and "EvPower API" in docs["title"]
