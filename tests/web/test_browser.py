"""The status page in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

Logs in, watches the printer light go red when the virtual printer runs out of paper and
green again, reprints a receipt and finds KOPIE on the virtual paper. Screenshots of the
main views go to var/screenshots/ (docs/screenshots/, shown in the README, with
WIX_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, Service, sample
from tests.web.conftest import PASSWORD
from wix_printer.devprinter import VirtualPrinter
from wix_printer.fakewix.signing import WebhookSigner

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# var/ by default: a test run must not dirty the tree (image builds record a dirty tree).
# WIX_UPDATE_SCREENSHOTS=1 refreshes the README's pictures in docs/screenshots.
SHOTS = ROOT / ("docs" if os.environ.get("WIX_UPDATE_SCREENSHOTS") == "1" else "var") / "screenshots"
# Root in a container: no sandbox; and nothing that phones home or updates itself.
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (./dev setup installs Debian's chromium)", allow_module_level=True)

async_api = pytest.importorskip("playwright.async_api")


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    profile = tmp_path / "chromium-profile"
    async with async_api.async_playwright() as p:
        # A persistent context gives every run a fresh --user-data-dir of its own.
        ctx = await p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1100, "height": 900}, locale="de-DE", timezone_id="Europe/Berlin")
        try:
            yield ctx
        finally:
            await ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


async def _shot(page: Any, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


async def _light(page: Any, colour: str, timeout: float = 20_000) -> None:
    await page.wait_for_selector(f'#printer[data-colour="{colour}"]', timeout=timeout)


async def test_login_paper_out_and_reprint(tmp_path: Path, web_service: Any, browser: Any,
                                           signer: WebhookSigner) -> None:
    async with VirtualPrinter(tmp_path / "paper") as vp:
        svc: Service = await asyncio.to_thread(web_service, printer_port=vp.port)
        for i, name in enumerate(("delivery-berlin", "pickup-zurich-cash")):
            order = sample(name)
            token = signer.sign_webhook(order, "approved", "object", "site-1", i + 1, None, 600, "RS256")
            assert (await asyncio.to_thread(svc.post, token))[0] == 200
        printed = await vp.wait_for_jobs(5, timeout=30)
        assert len(printed) == 5

        page = await browser.new_page()
        await page.goto(f"{svc.url}/")
        assert page.url.endswith("/login")
        await _shot(page, "login", full=False)
        await page.fill("input[name=password]", "falsch")
        await page.click("button[type=submit]")
        await page.wait_for_selector(".flash.error")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{svc.url}/")
        await _light(page, "green")
        assert await page.locator("#overall").get_attribute("data-state") == "green"
        assert await page.locator("article.order").count() == 2
        await page.locator("article.order").first.locator("details.preview summary").first.click()
        await page.wait_for_function("() => { const i = document.querySelector('details[open] img');"
                                     " return i && i.complete && i.naturalWidth > 0; }")
        await _shot(page, "status")

        # Paper out: the light turns red by itself (live update, no reload) and back.
        vp.set_fault("paper-end")
        await _light(page, "red")
        assert "Papier leer" in await page.locator("#printer").inner_text()
        await _shot(page, "paper-out", full=False)
        vp.clear_fault("paper-end")
        await _light(page, "green")

        # Reprint the kitchen ticket of #10234 in two taps: find the order, press Reprint.
        order = page.locator("article.order", has_text="#10234")
        await order.locator('li[data-kind="kitchen"] button', has_text="Nachdrucken").click()
        await page.wait_for_selector(".flash.ok")
        jobs = await vp.wait_for_jobs(6, timeout=20)
        assert "KOPIE" in jobs[5].text and "#10234" in jobs[5].text
        await page.wait_for_selector('article.order li[data-kind="kitchen"][data-state="printed"] >> text=×2')

        # A test page from the page's button.
        await page.click("#test-print")
        jobs = await vp.wait_for_jobs(7, timeout=20)
        assert "TESTDRUCK" in jobs[6].text

        await page.goto(f"{svc.url}/setup")
        await page.wait_for_selector("ul.checks")
        await _shot(page, "setup")

        # The same page on a phone, in English.
        phone = await browser.new_page()
        await phone.set_viewport_size({"width": 390, "height": 844})
        await phone.goto(f"{svc.url}/?lang=en")
        await phone.wait_for_selector("#printer")
        assert "Today's orders" in await phone.content()
        await _shot(phone, "phone-en")


async def test_without_javascript_the_page_refreshes_itself(web_service: Any, browser: Any) -> None:
    svc: Service = await asyncio.to_thread(web_service)
    page = await browser.new_page()
    await page.goto(f"{svc.url}/login")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{svc.url}/")
    html = await page.content()
    assert '<meta http-equiv="refresh" content="15">' in html  # inside <noscript>
    assert "/static/live.js" in html


async def test_first_visit_sets_password(web_service: Any, browser: Any) -> None:
    svc: Service = await asyncio.to_thread(web_service, with_password=False)
    page = await browser.new_page()
    await page.goto(f"{svc.url}/")
    assert page.url.endswith("/setup")
    await _shot(page, "first-visit", full=False)
    await page.fill("input[name=password]", "neues-passwort-1")
    await page.fill("input[name=password_repeat]", "neues-passwort-1")
    await page.click("button[type=submit]")
    await page.wait_for_selector("ul.checks")
    assert await page.locator('li.check[data-ok="true"]').count() >= 1
