"""The review page in a real browser (Debian's chromium + chromedriver, driven by Selenium).

``python -m level5_discovery review`` runs in a subprocess (small models, 8-gene world 3, at
most 3 experiments); the browser approves the first proposal, rejects the second, edits the
third (over-express another gene instead) and approves the fourth, which ends the session; then
the page's decisions log and the files the session wrote are checked, and Ctrl-C stops the
server cleanly. With ``LEVEL5_REVIEW_SCREENSHOT=PATH`` the page is also saved as a PNG there
(the README's screenshot was taken this way).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from ml_common.paths import level_dir
from ml_common.services import free_port, wait_healthy
from tests.level5.cli_helpers import command, decisions, fresh_outputs, small_env

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def browser(profile: Path):  # noqa: ANN201
    """Headless chromium, nothing downloaded (explicit binary and driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--window-size=1280,1700"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.mark.slow
@pytest.mark.requires("chromium")
def test_a_whole_session_reviewed_in_the_browser(tmp_path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    out = fresh_outputs()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(command("review", "--seed", "3", "--port", str(port)),
                              env=small_env(LEVEL5_MAX_EXPERIMENTS="3"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    driver = None
    try:
        assert wait_healthy(f"{url}/healthz", timeout_s=120), "review server did not start"
        driver = browser(tmp_path / "profile")
        driver.get(url)
        wait = WebDriverWait(driver, 600)  # the first run trains the small models (~30 s)
        text = lambda element_id: driver.find_element(By.ID, element_id).text  # noqa: E731
        seen: list[str] = []

        def next_proposal() -> str:
            """Wait for a new proposal with enabled buttons; return its gene."""
            wait.until(lambda d: d.find_element(By.ID, "approve").is_enabled()
                       and text("proposal-title").startswith(f"[{len(seen) + 1}]"))  # fmt: skip
            gene = text("proposal-title").split()[2]
            seen.append(gene)
            hypotheses = driver.find_elements(By.CSS_SELECTOR, "#hypotheses > li")
            assert hypotheses, "no literature block shown"
            for item in hypotheses:  # only the literature about the proposed gene
                assert gene in item.text, (gene, item.text)
            return gene

        next_proposal()
        assert "z3 split score" in text("proposal-reason")
        assert driver.find_elements(By.CSS_SELECTOR, "#hypotheses .passage.supports")
        driver.find_element(By.ID, "approve").click()

        rejected = next_proposal()
        driver.find_element(By.ID, "note").send_keys("too costly")
        driver.find_element(By.ID, "reject").click()

        third = next_proposal()
        assert third != rejected, "the rejected experiment came back without new data"
        genes = [o.get_attribute("value") for o in
                 Select(driver.find_element(By.ID, "edit-gene")).options]  # fmt: skip
        instead = next(g for g in genes if g not in (third, rejected))
        Select(driver.find_element(By.ID, "edit-gene")).select_by_value(instead)
        Select(driver.find_element(By.ID, "edit-kind")).select_by_value("overexpress")
        driver.find_element(By.ID, "edit").click()

        next_proposal()
        screenshot = os.environ.get("LEVEL5_REVIEW_SCREENSHOT")
        driver.save_screenshot(str(level_dir(5) / "review_page.png"))
        if screenshot:
            driver.save_screenshot(screenshot)
        driver.find_element(By.ID, "approve").click()

        wait.until(lambda d: text("phase") == "finished")
        rows = driver.find_elements(By.CSS_SELECTOR, "#decisions tbody tr")
        assert [r.get_attribute("data-action") for r in rows] == [
            "approve", "reject", "edit", "approve"]  # fmt: skip
        assert [r.find_elements(By.TAG_NAME, "td")[3].text for r in rows] == [
            f"knockout {seen[0]}",
            "nothing",
            f"overexpress {instead}",
            f"knockout {seen[3]}",
        ]
        assert "too costly" in rows[1].text
        assert text("result").startswith("3 experiments;")
        assert "metrics.json" in text("outputs")
        assert "reviewer rejected it (too costly)" in text("story")
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGINT)
        log, _ = server.communicate(timeout=120)
    assert server.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    assert log.strip().splitlines()[-1].startswith("review page stopped (finished)")
    # What the session wrote: the same four decisions, three experiments, the story.
    assert [d["decision"]["action"] for d in decisions(out)] == [
        "approve", "reject", "edit", "approve"]  # fmt: skip
    assert [d["proposed"]["gene"] for d in decisions(out)] == seen
    assert decisions(out)[2]["decision"]["gene"] == instead
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["reviewer"], metrics["experiments"]) == ("web", 3)
    story = (out / "session_story.txt").read_text()
    assert f"reviewer edited it: overexpress {instead}" in story
    assert json.loads((out / "config.json").read_text())["max_experiments"] == 3
