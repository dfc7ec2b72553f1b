"""End to end in headless Chromium: log in, open the violations page, find the chart drawn.

Skipped, saying why, only where Debian's ``chromium`` and ``chromium-driver`` are not
installed (the ``browser`` fixture of tests/browser_env.py). With
``BRIDGE_SCREENSHOTS=<folder>`` it also saves the main pages there (docs/screenshots/).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tests.admin_env import PASSWORDS
from tests.bitrix24_env import Bridge, deal

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

PAGES = ("violations", "sla", "refusals", "journal", "queue", "try", "backtest")


def _violation(bridge: Bridge) -> None:
    for name in ("ONCRMDEALADD", "ONCRMDEALUPDATE"):
        bridge.sandbox.subscribe(name, bridge.hook_url)
    for title, reason in (("Кухня на Ленина", ""), ("Ванная на Мира", ""), ("Дача", "дорого")):
        deal_id = bridge.sandbox.add_deal(deal(title))
        bridge.settle()
        bridge.sandbox.update_deal(
            deal_id, {"STAGE_ID": "C1:LOSE", "UF_CRM_1700000001": reason}, by_user=3
        )
        bridge.settle()


def test_log_in_and_see_the_violations_chart(
    admin_bridge: Bridge, browser: Chrome, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    _violation(admin_bridge)
    # localhost: a secure context for Chromium, so it keeps the Secure session cookie
    base = admin_bridge.server.url.replace("127.0.0.1", "localhost")
    browser.get(f"{base}/admin/violations")
    assert "/admin/login" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("orlov")
    browser.find_element(By.NAME, "password").send_keys(PASSWORDS["orlov"])
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    # the click only starts the form's submission: wait for the page it leads to
    WebDriverWait(browser, 15).until(lambda b: "/admin/login" not in b.current_url)
    assert browser.current_url.startswith(f"{base}/admin/violations")
    assert browser.find_element(By.ID, "total").text == "2"
    chart = browser.find_element(By.CSS_SELECTOR, "#violations-by-rule svg.pygal-chart")
    bars = chart.find_elements(By.CSS_SELECTOR, ".bar rect")
    assert len(bars) == 1 and bars[0].size["width"] > 50  # one rule, drawn as a real bar
    assert "refusal-needs-reason" in chart.text
    folder = Path(os.environ.get("BRIDGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for name in PAGES:
        browser.get(f"{base}/admin/{name}?tenant=remarka")
        assert "/admin/login" not in browser.current_url, name
        shot = folder / f"admin-{name}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000, name
