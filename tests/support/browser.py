"""Headless Chromium for the UI tests: Debian's `chromium` (installed with apt-get when missing, as the lab
installs HAProxy and Prometheus), driven by Python Playwright. Never `playwright install`: its browser
downloads are not reachable here, and the distribution's browser is what a fresh machine can get.

    with chromium() as browser:
        page = browser.new_page(base_url=airflow.url)
        login(page, "admin", airflow.password)
        shots.take(page, "dag-list")
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# FIELD-NOTES: what Debian's Chromium needs to run headless as root in a container, and nothing that
# reaches the network on its own.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 30_000  # one UI action on a loaded 2-core machine (the stack and its runs share the cores)
NAVIGATION_TIMEOUT_MS = 60_000
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
PUBLISH = "SLOW_INJECTION_SCREENSHOTS"


def ensure_chromium() -> str:
    """Debian's chromium, installed (--no-install-recommends) the first time it is needed."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium")
    started = time.monotonic()
    print("installing chromium (Debian package, --no-install-recommends) …", flush=True)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=300"]  # another test session may be installing packages
    subprocess.run(["apt-get", *wait_for_lock, "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", *wait_for_lock, "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, env=env
    )
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"apt-get installed chromium but {CHROMIUM} is not there")
    print(f"chromium installed in {time.monotonic() - started:.0f}s", flush=True)
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright.sync_api.Browser), closed on exit."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, base_url: str) -> Any:
    """A page in a fresh browser context (no cookies yet: sign in with login())."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    return context.new_page()


def login(page: Any, username: str, password: str) -> None:
    """Sign in through Airflow's own login form, the way a person does: "/" redirects to it."""
    from playwright.sync_api import expect

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    expect(page.get_by_text("Sign into Airflow")).to_be_visible()
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/auth/login"))


def fit_viewport(page: Any, locator: Any, margin: int = 80, most: int = 2400) -> None:
    """Make the viewport tall enough (up to MOST pixels) for the whole of LOCATOR: a dialog or an
    iframe's page taller than the window is otherwise cut at the window's edge in a screenshot."""
    height = int(locator.evaluate("e => e.scrollHeight")) + margin
    size = page.viewport_size or VIEWPORT
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(height, most)})


class Screenshots:
    """Screenshots go to a temporary folder; with SLOW_INJECTION_SCREENSHOTS=1 they are also copied to
    docs/screenshots/ (so an ordinary test run leaves the repository untouched)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.publish = os.environ.get(PUBLISH) == "1"

    def take(self, target: Any, name: str, **options: Any) -> Path:
        """Screenshot a page or a locator (e.g. a dialog) as NAME.png; returns the temporary file."""
        path = self.folder / f"{name}.png"
        target.screenshot(path=str(path), animations="disabled", **options)
        if self.publish:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
        return path
