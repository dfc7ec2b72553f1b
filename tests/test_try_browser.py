"""The page of ``bridge try`` in headless Chromium: type a line, press Enter, see the task the
bridge made appear on the page, as an admin trying their pack would.

Skipped, saying why, only where Debian's ``chromium`` and ``chromium-driver`` are not
installed (tests/browser_env.py, the ``browser`` fixture).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bridge.trial import Trial
from bridge.trial.page import blueprint
from tests import tutorial
from tests.bitrix24_env import ROOT

if TYPE_CHECKING:
    from selenium.webdriver import Chrome


@pytest.fixture
def trial(tmp_path: Path, redis_url: str, redis_conn) -> Iterator[Trial]:
    """The tutorial's tenant (docs/first-pack.md) on its Bitrix24 sandbox, on a Friday."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    tutorial.write((ROOT / "docs" / "first-pack.md").read_text(encoding="utf-8"), tmp_path)
    found = Trial(
        "heating",
        config_path=str(tmp_path / "config" / "bridge.yaml"),
        start=datetime.fromisoformat("2025-11-14T10:00:00+03:00"),
        redis_url=redis_url,
        pages=(blueprint,),
    )
    yield found
    found.close()


def play(browser: Chrome, line: str) -> str:
    """Type a line into the page, press Enter, and return what the page says it did."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    field = browser.find_element(By.NAME, "line")
    field.send_keys(line, Keys.ENTER)
    WebDriverWait(browser, 30).until(shown.staleness_of(field))  # the page came back
    heading = WebDriverWait(browser, 30).until(
        shown.visibility_of_element_located((By.CSS_SELECTOR, "h2"))
    )
    assert heading.text == line
    return browser.find_element(By.ID, "output").text


def test_a_line_typed_on_the_page_shows_the_task_it_made(browser: Chrome, trial: Trial) -> None:
    from selenium.webdriver.common.by import By

    browser.get(trial.url)
    assert browser.find_element(By.ID, "now").text == "Friday 14 November 2025 10:00"
    assert browser.find_element(By.ID, "tasks").text == ""
    play(browser, 'new deal "Котёл в баню" at kp_prep for petrov')
    records = browser.find_element(By.ID, "records").text
    assert "Котёл в баню" in records and "kp_prep" in records
    deal = trial.records[-1].id
    said = play(browser, f"deal {deal} to kp_sent")
    petrov = trial.tenant.mapping.users["petrov"]
    assert f"task «Укажите модель котла: Котёл в баню» → user {petrov}" in said
    rows = browser.find_elements(By.CSS_SELECTOR, "#tasks tr")
    assert [r.text for r in rows] == [
        f"deal {deal} Укажите модель котла: Котёл в баню user {petrov} 2025-11-14 12:00:00+03:00"
    ]
    play(browser, "clock monday 10:00")
    assert browser.find_element(By.ID, "now").text == "Monday 17 November 2025 10:00"
    said = play(browser, f"dael {deal} to lost")
    assert said == "error: unknown command 'dael' (did you mean 'deal'?); `help` lists them"
