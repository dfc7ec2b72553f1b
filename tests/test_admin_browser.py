"""End to end in headless Chromium: log in, open the violations page, find the chart drawn.

Debian's ``chromium`` and ``chromium-driver`` (scripts/setup installs them where it may);
the test is skipped, saying why, only where they are not installed. With
``BRIDGE_SCREENSHOTS=<folder>`` it also saves the main pages there (docs/screenshots/).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.admin_env import PASSWORDS
from tests.bitrix24_env import Bridge, deal

CHROMIUM, DRIVER = "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,1400",
)
PAGES = ("violations", "sla", "refusals", "journal", "queue", "try", "backtest")

webdriver = pytest.importorskip("selenium.webdriver")
if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
    pytest.skip(
        f"no headless browser: {CHROMIUM} or chromedriver is missing "
        "(apt-get install chromium chromium-driver; scripts/setup does it as root)",
        allow_module_level=True,
    )


@pytest.fixture
def browser() -> webdriver.Chrome:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


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
    admin_bridge: Bridge, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    _violation(admin_bridge)
    # localhost: a secure context for Chromium, so it keeps the Secure session cookie
    base = admin_bridge.server.url.replace("127.0.0.1", "localhost")
    browser.get(f"{base}/admin/violations")
    assert "/admin/login" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("orlov")
    browser.find_element(By.NAME, "password").send_keys(PASSWORDS["orlov"])
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
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
