"""The NOC page in headless Chromium: sign in, see a blocked call arrive live, filter.

Needs Debian's ``chromium`` and the ``playwright`` package (driving that
executable; no browser download). A screenshot is written to the test's tmp dir
and, when ``FSP_NOC_SCREENSHOT`` names a file, copied there for people to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from web_support import TOKENS, Env

from fs_plugin.lab.calls import LabCall
from fs_plugin.web.auth import Role

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)",
                allow_module_level=True)
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed")

BLOCKED = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
PASSED = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1")


async def test_noc_page_shows_blocked_call_live_and_filters(env: Env, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1500, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(env.base + "/")
            await page.fill("#token", TOKENS[Role.NOC])
            await page.click("#login-form button")
            await page.wait_for_selector("#st-stream.ok", timeout=5000)
            assert "noc-user" in await page.inner_text("#st-who")

            passed = await env.rig.switch.place(PASSED)
            blocked = await env.rig.switch.place(BLOCKED)
            row = page.locator(f'tr.decision[data-uuid="{blocked.uuid}"]')
            await row.wait_for(timeout=5000)
            text = await row.inner_text()
            assert "block" in text and "cid.not_allowed" in text and "ent-1" in text
            assert "021****0123" in text and "02155550123" not in await page.content()
            await page.locator(f'tr.decision[data-uuid="{passed.uuid}"]').wait_for(timeout=5000)

            # Filter on verdict: the page reconnects and gets the matching backlog only.
            await page.select_option("#f-verdict", "pass")
            await page.click("#f-apply")
            await page.locator(f'tr.decision[data-uuid="{passed.uuid}"]').wait_for(timeout=5000)
            assert await page.locator('tr.decision[data-verdict="block"]').count() == 0

            await page.select_option("#f-verdict", "block")
            await page.fill("#f-number", "0123")  # the visible tail of the caller
            await page.click("#f-apply")
            await row.wait_for(timeout=5000)
            assert await page.locator('tr.decision[data-verdict="pass"]').count() == 0

            # A new blocked call still streams in under the filter; drill down into it.
            again = await env.rig.switch.place(BLOCKED)
            fresh = page.locator(f'tr.decision[data-uuid="{again.uuid}"]')
            await fresh.wait_for(timeout=5000)
            # Rates refresh every 5 s (the page's CSP forbids evaluated JS: wait on the DOM).
            await page.locator("#rates-trunk tbody td", has_text="ent-1").first.wait_for(
                timeout=8000)
            await fresh.click()
            await page.wait_for_selector("#detail:not([hidden]) #d-trail tbody tr", timeout=5000)
            assert "cid.not_allowed" in await page.inner_text("#d-trail")
            await page.evaluate("window.scrollTo(0, 0)")

            shot = tmp_path / "noc.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            target = os.environ.get("FSP_NOC_SCREENSHOT")
            if target:
                shutil.copy(shot, target)
            assert errors == []
        finally:
            await browser.close()
