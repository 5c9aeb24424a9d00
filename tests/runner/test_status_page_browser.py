"""The status page in a real browser: headless Chromium (Debian's) driven by Playwright.

Each test runs a real daemon on a real config against the embedded fake Spotify, and clicks
through its page the way a person would; what it checks is the run history the daemon wrote.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from browser_world import screenshot, with_browser
from daemon_world import World, every, wait_for

from runner.state import RunStatus

pytestmark = pytest.mark.slow

TIMEOUT = 30_000  # ms; the machine may be loaded


def on_redirect_port(world: World) -> dict[str, str]:
    """The daemon listens where Spotify sends the browser back (the default without `listen`)."""
    return {"listen": f"127.0.0.1:{world.redirect_port}"}


def ok(world: World, job: str) -> list[Any]:
    return [r for r in world.runs(job) if r.status is RunStatus.OK]


def test_overview_run_now_pause_and_resume(world: World) -> None:
    world.write_config(
        {
            "tick": every(2),
            "nap": {"job": "slow", "schedule": {"every": "1h"}, "options": {"seconds": 2}},
        },
        http=on_redirect_port(world),
    )

    def drive(browser: Any, base: str) -> None:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(base + "/")
        assert page.locator("#job-tick").is_visible()
        assert page.locator("#job-nap").is_visible()
        assert "authorized" in page.locator("#account-default").inner_text()
        assert page.title() == "spotify-runner"
        screenshot(browser, base + "/", "overview")

        # Run now: a manual run that appears in the job's history.
        page.locator("#job-nap").get_by_role("button", name="Run now").click()
        page.wait_for_url(base + "/jobs/nap")
        # While it runs the page refreshes itself (no JavaScript): the finished run shows up.
        page.locator("tr.run", has_text="manual").filter(has_text="ok").wait_for()
        assert [r.trigger for r in ok(world, "nap")] == ["manual"]
        screenshot(browser, base + "/jobs/nap", "job")

        # Pause: no scheduled run starts until Resume.
        wait_for(lambda: ok(world, "tick"), 30, "a first scheduled run of tick")
        page.goto(base + "/")
        page.locator("#job-tick").get_by_role("button", name="Pause").click()
        page.wait_for_url(base + "/")
        assert "paused" in page.locator("#job-tick").inner_text()
        # A run whose due time came just before the click may still be starting: give it a
        # second, then no run may start for two and a half intervals of `every: 2s`.
        time.sleep(1)
        paused_at = datetime.now(UTC)
        time.sleep(5)
        assert [r for r in world.runs("tick") if r.started_at > paused_at] == []
        page.locator("#job-tick").get_by_role("button", name="Resume").click()
        page.wait_for_url(base + "/")
        assert "paused" not in page.locator("#job-tick").inner_text()
        wait_for(
            lambda: [r for r in ok(world, "tick") if r.started_at > paused_at],
            30,
            "a scheduled run after Resume",
        )
        page.close()

    with_browser(world, drive)
    world.assert_no_secrets()


def test_reauthorize_a_revoked_account_through_the_consent_page(world: World) -> None:
    world.write_config({"tick": every(2)}, http=on_redirect_port(world))
    assert world.refresh_token is not None
    world.fake.revoke(world.refresh_token)
    world.fake.consent_page = True

    def drive(browser: Any, base: str) -> None:
        wait_for(
            lambda: any(r.status is RunStatus.NEEDS_AUTH for r in world.runs("tick")),
            30,
            "a run refused for authorization",
        )
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(base + "/")
        account = page.locator("#account-default")
        assert "revoked" in account.inner_text()
        account.get_by_role("button", name="Re-authorize").click()
        # The fake Spotify's consent page, then back to the daemon's own /callback.
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(base + "/callback?*")
        assert page.locator("h1").inner_text() == "Authorized"
        refused_last = max(r.id for r in world.runs("tick") if r.status is RunStatus.NEEDS_AUTH)
        wait_for(
            lambda: [r for r in ok(world, "tick") if r.id > refused_last],
            30,
            "an ok run after re-authorizing, without a restart",
        )
        page.goto(base + "/")
        assert "authorized" in page.locator("#account-default").inner_text()
        assert "revoked" not in page.locator("#account-default").inner_text()
        page.close()

    with_browser(world, drive)
    world.assert_no_secrets()
