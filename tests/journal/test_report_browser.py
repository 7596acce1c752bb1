"""The quarterly report's HTML in headless Chromium: every chart draws, with its bars.

Needs Debian's ``chromium`` and the ``playwright`` package (driving that executable;
no browser download). A screenshot is written to the test's tmp dir and, when
``FSP_REPORT_SCREENSHOT`` names a file, copied there for people to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from fs_plugin.journal.report import QuarterReport, parse_quarter, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)",
                allow_module_level=True)
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed")


def _report() -> QuarterReport:
    start, end = parse_quarter("2026Q4")
    weeks = tuple(
        ((start + dt.timedelta(weeks=i)).date().isoformat(), 1000 + 37 * i, 120 + 11 * i)
        for i in range(13))
    return QuarterReport(
        quarter="2026Q4", start=start, end=end,
        totals={"screened": 15_000, "blocked": 2_300, "warned": 410},
        blocks_by_rule=(("cid.not_allowed", 1200), ("rate.caller", 700), ("pattern.bombing", 400)),
        blocks_by_trunk=(("ent-1", 1500), ("cc-1", 800)),
        blocks_by_customer=(("acme 广州艾克米", 1500), ("quickloan", 800)),
        blocks_by_industry=(("real_estate", 1600), ("finance", 700)),
        complaints={"received": 40, "answered": 35, "answered_on_time": 30,
                    "answered_late": 5, "overdue": 2},
        complaints_by_category=(("harassment", 25), ("fraud", 15)),
        top_callers=(("021****0123", 300),),
        top_violators=(("acme", 12),),
        weekly=weeks,
    )


async def test_report_charts_render_in_a_browser(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    report = _report()
    page_file = tmp_path / "report-2026Q4.html"
    with page_file.open("w", encoding="utf-8") as out:
        write_html(report, out)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1300, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            await page.goto(page_file.as_uri())
            charts = page.locator("svg")
            # The trend and one bar chart per ranking that has entries.
            rankings = [report.blocks_by_rule, report.blocks_by_trunk, report.blocks_by_customer,
                        report.blocks_by_industry, report.complaints_by_category,
                        report.top_callers, report.top_violators]
            assert await charts.count() == 1 + len(rankings)
            for i in range(await charts.count()):
                box = await charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 20
            # Bars have the drawn widths their values ask for, biggest first.
            rule_bars = page.locator('svg[aria-label="Blocks by rule"] rect')
            widths = [float(await rule_bars.nth(i).get_attribute("width") or 0)
                      for i in range(await rule_bars.count())]
            assert len(widths) == 3 and widths[0] > widths[1] > widths[2] > 0
            drawn = await rule_bars.nth(0).bounding_box()
            assert drawn is not None and drawn["width"] > 300
            trend = page.locator('svg[aria-label^="Weekly trend"]')
            assert await trend.locator("polyline").count() == 2
            assert await trend.locator("circle").count() == 2 * len(report.weekly)
            assert "15,000" in await page.inner_text("body")
            shot = tmp_path / "report.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("FSP_REPORT_SCREENSHOT"):
                shutil.copy(shot, os.environ["FSP_REPORT_SCREENSHOT"])
            assert errors == []
        finally:
            await browser.close()
