"""Browser fixtures: the app served on localhost against a committed, demo-seeded database, and
Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from backend.app import create_app
from backend.runtime.demo import seed_demo
from tests.conftest import fresh_database_url, migrate_database, test_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _require_chromium() -> None:
    # Locally a machine without chromium skips with the reason; in CI a missing browser is a failure.
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need Debian's chromium")


def require_cjk_font() -> None:
    """Chinese text needs a CJK font in the browser's fontconfig (scripts/ensure-chromium installs Debian's
    fonts-noto-cjk); without one it renders as boxes. Missing in CI is a failure, locally a skip."""
    found = ""
    if shutil.which("fc-list"):
        found = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout.strip()
    if not found:
        if os.environ.get("CI"):
            pytest.fail("no CJK font in CI: scripts/ensure-chromium installs Debian's fonts-noto-cjk")
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk): Chinese text would render as boxes")


def sign_in(page, email: str, password: str) -> None:
    """Sign in through the login form with the keyboard only (the email field has focus on arrival)."""
    from playwright.sync_api import expect

    page.goto("/login")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    """The app with console SMS, on a fresh migrated database seeded with the demo trial."""
    _require_chromium()
    tmp = tmp_path_factory.mktemp("live")
    with fresh_database_url(tmp) as url:
        migrate_database(url, tmp)
        app = create_app(test_settings(url, INSTANCE_DIR=str(tmp), SMS_BACKEND="console"))
        seed_demo(app, force=True)
        yield app
        app.extensions["database"].engine.dispose()


@pytest.fixture(scope="module")
def live_server(live_app):
    """The base URL of the app served from a background thread on localhost."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium through Playwright, one for the whole session."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (its own cookies) and page, with the base URL set."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """artifacts/screenshots at the repository root (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def console_errors(page) -> list[str]:
    """Script errors and console errors of the page (a CSP violation or a broken chart shows up here)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None)
    return errors


def chinese_width(page) -> dict | None:
    """Four Chinese characters of the screen measured in place, beside four code points no font has (tofu)."""
    return page.evaluate(
        """() => {
            const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const at = node.textContent.search(/\\p{Script=Han}{4}/u);
                if (at < 0) continue;
                const range = document.createRange();
                range.setStart(node, at);
                range.setEnd(node, at + 4);
                const chinese = range.getBoundingClientRect().width;
                const tofu = document.createElement("span");
                tofu.textContent = "\\u0378\\u0379\\u0380\\u0381";
                node.parentElement.append(tofu);
                const width = tofu.getBoundingClientRect().width;
                tofu.remove();
                const em = parseFloat(getComputedStyle(node.parentElement).fontSize);
                return {text: node.textContent.slice(at, at + 4), chinese, tofu: width, em};
            }
            return null;
        }"""
    )
