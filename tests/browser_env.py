"""Headless Chromium for the end-to-end page tests (Debian's ``chromium`` and
``chromium-driver``; scripts/setup installs them where it may).

Its ``browser`` fixture (registered in tests/conftest.py) skips the test, saying why, where
they are not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

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


@pytest.fixture
def browser() -> Iterator[Chrome]:
    """A headless Chromium, quit after the test (the test is skipped where there is none)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(
            f"no headless browser: {CHROMIUM} or chromedriver is missing "
            "(apt-get install chromium chromium-driver; scripts/setup does it as root)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
