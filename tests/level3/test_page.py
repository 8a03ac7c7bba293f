"""The try-it page in a real browser (Debian's chromium + chromedriver, driven by Selenium):
pick a user, see history and recommendations with titles and the serving model, click items
(real feedback through the impression flow), watch the CTR per model version update."""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path

import pytest

from level3_recsys.deploy import SERVICE_APP
from level3_recsys.loadtest.run import uvicorn_server
from tests.conftest import require_system_tool

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
    require_system_tool("chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="level3-chromium-") as profile:
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def service(tiny_bundle):
    env = {"LEVEL3_SERVE__BUNDLE_DIR": str(tiny_bundle), "LEVEL3_SERVE__ADMIN_TOKEN": "page-tok"}
    with uvicorn_server(SERVICE_APP, env) as base:
        yield base


def test_page_recommends_records_clicks_and_shows_ctr(browser, service):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # The page rebuilds its lists and table after each answer: an element found just before a
    # rebuild goes stale, so waits retry on that. 60 s is a ceiling for a busy machine, not a
    # latency target (each wait returns as soon as the page shows the expected state).
    wait = WebDriverWait(browser, 60, ignored_exceptions=[StaleElementReferenceException])
    browser.get(f"{service}/")
    assert "Level 3 recommender" in browser.title
    # the picker is filled with known users; type one instead
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#known-users option"))
    user = browser.find_element(By.ID, "user")
    user.clear()
    user.send_keys("3")
    k = browser.find_element(By.ID, "k")
    k.clear()
    k.send_keys("5")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recommendations button")) == 5)
    history = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#history li")]
    assert history and all(line.startswith("Movie ") for line in history)
    buttons = browser.find_elements(By.CSS_SELECTOR, "#recommendations button")
    assert all(b.text.startswith("Movie ") for b in buttons)
    # user 3 is odd: their cluster is items 115..129
    assert all(115 <= int(b.get_attribute("data-item-id")) < 130 for b in buttons)
    assert "model 1" in browser.find_element(By.ID, "served-by").text

    def ctr_cell() -> str:
        try:
            cells = browser.find_elements(By.CSS_SELECTOR, '#ctr tr[data-version="1"] td')
            return cells[2].text if cells else ""
        except StaleElementReferenceException:  # the table was rebuilt meanwhile
            return ""

    wait.until(lambda d: ctr_cell() == "0.000")
    buttons[0].click()
    wait.until(lambda d: ctr_cell() == "0.200")  # 1 click / 5 shown
    buttons[1].click()
    wait.until(lambda d: ctr_cell() == "0.400")
    buttons[1].click()  # the same item again: counted once
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "counted once"))
    wait.until(lambda d: ctr_cell() == "0.400")
    assert "clicked" in buttons[0].get_attribute("class")
    # the server agrees: the clicks went through the impression flow
    with urllib.request.urlopen(f"{service}/model", timeout=10) as response:
        model = json.load(response)
    assert model["ctr_by_version"]["1"] == pytest.approx(0.4)
    # an id that is no number is refused on the page, before any request
    user.clear()
    user.send_keys("abc")
    browser.find_element(By.ID, "go").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "non-negative whole number"))
