"""Headless Chromium (Debian's package) through Playwright, and a daemon with its status page.

The daemon runs in this process (its `serve()` needs the main thread, for signals) and serves
its pages itself (waitress, on the config's redirect port); the browser is driven from a helper
thread.
Nothing downloads a browser: Playwright is pointed at /usr/bin/chromium. Where that Chromium or
Playwright is missing the tests are skipped saying so, except under CI (`CI` set), where they
fail: `make test` installs the chromium package when it can (as root).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daemon_world import World, wait_for

from runner.daemon import Daemon

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def need_browser() -> None:
    """Skips (or, under CI, fails) when Chromium or Playwright is not installed."""
    missing = None
    if not CHROMIUM.exists():
        missing = (
            f"{CHROMIUM} is not installed (apt-get install chromium; 'make test' does it as root)"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -e '.[test]')"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(missing)


def serve_pages(daemon: Daemon, host: str, port: int) -> Callable[[], None]:
    """Waits until the daemon's own HTTP server (waitress) serves its pages on host:port."""
    wait_for(lambda: getattr(daemon, "web", None) is not None, 30, "the daemon's HTTP server")
    assert daemon.web is not None
    assert daemon.web.address == f"{host}:{port}"
    wait_for(daemon.web.ready.is_set, 30, "the daemon's HTTP server to serve")
    return lambda: None


def with_browser(world: World, drive: Callable[[Any, str], None]) -> None:
    """Runs the daemon on the world's config and `drive(browser, base_url)` beside it."""
    need_browser()
    daemon = Daemon(str(world.config_path))
    host, port = "127.0.0.1", world.redirect_port
    problems: list[BaseException] = []

    def run() -> None:
        from playwright.sync_api import sync_playwright

        stop = None
        try:
            stop = serve_pages(daemon, host, port)
            with sync_playwright() as pw:
                # launch() gives every run a fresh, temporary profile.
                browser = pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
                )
                try:
                    drive(browser, f"http://{host}:{port}")
                finally:
                    browser.close()
        except BaseException as exc:  # reported in the main thread
            problems.append(exc)
        finally:
            if stop is not None:
                stop()
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=run, name="browser")
    helper.start()
    try:
        assert daemon.serve() == 0
    finally:
        helper.join(120)
    if problems:
        raise problems[0]


def screenshot(browser: Any, url: str, name: str) -> None:
    """The page at `url` at desktop and phone widths, saved under test-artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size, mobile in (("desktop", DESKTOP, False), ("phone", PHONE, True)):
        context = browser.new_context(viewport=size, is_mobile=mobile)
        try:
            page = context.new_page()
            page.goto(url)
            path = ARTIFACTS / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
        finally:
            context.close()
