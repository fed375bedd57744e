"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright through `executable_path`;
no browser is downloaded): `trainkit serve` runs as a subprocess on a free loopback port, and the test clicks
overview -> filter examples -> open one -> accept it in the review queue with one key -> the audit entry, then
checks that a form on another site cannot post to it. Screenshots are saved under the test's tmp folder (and
copied to $TRAINKIT_SCREENSHOTS_DIR when set: that is how docs/img was made).

Without Chromium the tests skip locally but FAIL in CI (`.ci/run` sets TRAINKIT_TEST_BROWSER=required and
installs the packages), so CI never passes by skipping them.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_support import fill

import dspy_trainkit as tk

# read at import: the autouse `hermetic` fixture removes TRAINKIT_* variables before each test runs
CHROMIUM = os.environ.get("TRAINKIT_CHROMIUM", "/usr/bin/chromium")
BROWSER_REQUIRED = os.environ.get("TRAINKIT_TEST_BROWSER") == "required" or bool(os.environ.get("CI"))
SCREENSHOTS_DIR = os.environ.get("TRAINKIT_SCREENSHOTS_DIR")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
    if BROWSER_REQUIRED:
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, str, list[str]]]:
    """(dashboard URL, store URL, example ids): `trainkit serve --port 0` over a small store."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    ids = fill(db)
    with tk.open(db) as kit:
        kit.snapshot("baseline")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "dspy_trainkit", "--db", db, "serve", "--port", "0",
                                "--user", "tester"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, cwd=tmp_path)
    try:
        line = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert match, f"serve did not start: {line}{process.stdout.read() if process.poll() is not None else ''}"
        yield match.group(1), db, ids
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def browser(tmp_path):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = launched.new_context(viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()
            launched.close()


def shoot(page, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    if SCREENSHOTS_DIR:
        shutil.copy(folder / f"{name}.png", Path(SCREENSHOTS_DIR) / f"dashboard-{name}.png")
    assert (folder / f"{name}.png").stat().st_size > 1000


def test_overview_filter_open_accept_with_a_key_and_see_the_audit_entry(served, browser, tmp_path):
    base, db, ids = served
    page = browser.new_page()
    page.goto(base)
    assert page.locator("#task-qa").inner_text().count("candidate 4") == 1
    page.wait_for_selector("#task-qa .readiness strong")  # htmx loads readiness after the page
    assert page.locator("#task-qa .readiness strong").inner_text() == "not ready"
    shoot(page, tmp_path, "overview")

    page.click("nav >> text=Examples")
    page.select_option("select[name=status]", "candidate")
    page.fill("input[name=topic]", "add-odd")
    page.click("#filter")
    rows = page.locator("#example-list tr td:first-child a")
    assert rows.count() == 2  # candidates are ids[:4]; odd topic: ids[1] and ids[3]
    shoot(page, tmp_path, "examples")

    rows.first.click()
    opened = page.url.rsplit("/", 1)[1]
    assert opened in (ids[1], ids[3]) and page.locator("#status").inner_text() == "candidate"
    shoot(page, tmp_path, "example")

    page.click("nav >> text=Review")
    first = page.locator(".review-item").first
    first_id = first.get_attribute("id").removeprefix("item-")
    shoot(page, tmp_path, "review")
    with page.expect_navigation():
        page.keyboard.press("a")  # one keystroke accepts the selected example, the next one loads
    assert page.url.endswith("/review?task=qa&order=store")
    assert page.locator(f"#item-{first_id}").count() == 0 and page.locator(".review-item").count() == 3

    page.goto(f"{base}examples/{first_id}")
    assert page.locator("#status").inner_text() == "accepted"
    audit = page.locator("#audit tr").last.inner_text()
    assert "web:tester" in audit and "status" in audit
    shoot(page, tmp_path, "audit")
    page.goto(f"{base}quality?task=qa")
    assert page.locator("svg.heatmap").count() == 1
    page.wait_for_selector("#readiness strong")
    shoot(page, tmp_path, "quality")
    with tk.open(db) as kit:
        assert kit.get(first_id).status == "accepted"
        assert [e.actor for e in kit.events(example_id=first_id)][-1] == "web:tester"


def test_a_form_on_another_site_cannot_change_data(served, browser, tmp_path):
    base, db, ids = served
    target = f"{base}examples/{ids[0]}/status"
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    (attacker / "index.html").write_text(
        f'<form id="f" method="post" action="{target}"><input name="status" value="archived">'
        '<input name="csrf" value="guessed"></form><script>document.getElementById("f").submit()</script>')
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(attacker), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(base)  # the victim has the dashboard open (its cookies exist in this browser)
        with page.expect_navigation(url=target):
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        body = page.locator("body").inner_text()
    finally:
        server.shutdown()
    assert "Refused" in body
    time.sleep(0.2)
    with tk.open(db) as kit:
        assert kit.get(ids[0]).status == "candidate"


def test_after_an_action_the_cursor_is_on_the_item_that_followed(served, browser):
    base, _db, _ids = served
    page = browser.new_page()
    page.goto(f"{base}review?task=qa&order=store")
    order = [el.get_attribute("id") for el in page.locator(".review-item").element_handles()]
    assert len(order) >= 3
    page.keyboard.press("j")  # the cursor on the second item
    assert page.locator(".review-item.current").get_attribute("id") == order[1]
    with page.expect_navigation():
        page.keyboard.press("a")
    page.wait_for_selector(".review-item.current")
    assert page.locator(f"#{order[1]}").count() == 0
    assert page.locator(".review-item.current").get_attribute("id") == order[2]  # not back to the first
