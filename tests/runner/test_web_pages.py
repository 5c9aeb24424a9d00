"""The status page over HTTP, without a browser: what it shows, and every request it refuses.

Each refused request is followed by a look at what it would have changed (the pause, the token
store), so "refused" means "and nothing changed".
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from daemon_world import World, every
from flask import Flask
from flask.testing import FlaskClient

from runner.config import load_config
from runner.errors import UsageError
from runner.pause import is_paused
from runner.reauth import PendingAuthorizations
from runner.state import open_state
from runner.tokens import TokenStore
from runner.web.guard import Guard
from runner.web.pages import PageServices, add_pages


class Page:
    """An app around the world's config, and what its buttons asked the daemon to do."""

    def __init__(self, world: World, password: str | None = None) -> None:
        self.world = world
        self.host = f"127.0.0.1:{world.redirect_port}"
        self.manual: list[str] = []
        self.busy: set[str] = set()
        self.pending = PendingAuthorizations()
        config = load_config(str(world.config_path))
        app = Flask("runner.web")
        add_pages(
            app,
            PageServices(
                config=lambda: config,
                run_now=self._run_now,
                scopes=lambda account: frozenset({"playlist-modify-private"}),
                daemon=lambda: {"running_since": "2026-12-01 22:00:00", "rate_limit": None},
                guard=Guard([self.host], password=password, accounts_url=world.fake.accounts_url),
                pending=self.pending,
                requested=lambda name: name in self.manual,  # asked for, never started here
            ),
        )
        self.client: FlaskClient = app.test_client()
        self.base = f"http://{self.host}"

    def _run_now(self, name: str) -> None:
        if name in self.busy:
            raise UsageError(f"{name} is running right now; try again when this run has ended")
        self.manual.append(name)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, base_url=kw.pop("base_url", self.base), **kw)

    def token(self) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.get("/").get_data(True))
        assert found is not None
        return found.group(1)

    def post(self, path: str, data: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.post(path, data=data or {}, base_url=kw.pop("base_url", self.base), **kw)


@pytest.fixture
def page(world: World) -> Page:
    world.write_config({"tick": every(3600), "tock": every(7200)})
    return Page(world)


def paused(world: World, job: str = "tick") -> bool:
    state = open_state(world.state_dir)
    try:
        return is_paused(state, job, "default")
    finally:
        state.close()


def test_overview_lists_jobs_and_accounts_with_safe_headers(page: Page, world: World) -> None:
    answer = page.get("/")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    for text in ('id="job-tick"', 'id="job-tock"', 'id="account-default"', "Re-authorize"):
        assert text in html
    assert "Run now" in html
    assert "Pause" in html
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Cache-Control"] == "no-store"
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script" not in html
    for secret in world.secrets():
        assert secret not in html
    with page.get("/static/style.css") as css:  # a file response: closed after reading
        assert css.status_code == 200
        assert "@media" in css.get_data(as_text=True)


def test_a_wrong_host_is_refused_and_changes_nothing(page: Page, world: World) -> None:
    token = page.token()
    assert (
        page.get("/", base_url=f"http://rebound.example:{world.redirect_port}").status_code == 421
    )
    refused = page.post(
        "/jobs/tick/pause",
        {"csrf_token": token},
        base_url=f"http://rebound.example:{world.redirect_port}",
    )
    assert refused.status_code == 421
    assert not paused(world)


def test_a_post_without_csrf_or_from_a_foreign_origin_is_refused(page: Page, world: World) -> None:
    assert page.post("/jobs/tick/pause").status_code == 403
    assert page.post("/jobs/tick/pause", {"csrf_token": "forged"}).status_code == 403
    token = page.token()
    foreign = page.post(
        "/jobs/tick/pause", {"csrf_token": token}, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    cross = page.post(
        "/jobs/tick/run", {"csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    assert not paused(world)
    assert page.manual == []
    done = page.post("/jobs/tick/pause", {"csrf_token": token}, headers={"Origin": page.base})
    assert (done.status_code, done.headers["Location"]) == (303, "/")
    assert paused(world)
    assert "paused" in page.get("/jobs/tick").get_data(as_text=True)
    again = page.post("/jobs/tick/resume", {"csrf_token": token, "back": "job"})
    assert (again.status_code, again.headers["Location"]) == (303, "/jobs/tick")
    assert not paused(world)


def test_run_now_asks_the_daemon_and_shows_its_refusal(page: Page) -> None:
    token = page.token()
    started = page.post("/jobs/tick/run", {"csrf_token": token})
    assert (started.status_code, started.headers["Location"]) == (303, "/jobs/tick")
    assert page.manual == ["tick"]
    # Not recorded as running yet (the daemon only scheduled it): the page refreshes anyway,
    # or it would never show the run (it has no JavaScript).
    assert '<meta http-equiv="refresh"' in page.get("/jobs/tick").get_data(as_text=True)
    assert '<meta http-equiv="refresh"' not in page.get("/jobs/tock").get_data(as_text=True)
    page.busy.add("tick")
    refused = page.post("/jobs/tick/run", {"csrf_token": token})
    assert refused.status_code == 409
    assert "tick is running right now" in refused.get_data(as_text=True)
    assert page.manual == ["tick"]
    assert page.post("/jobs/nope/run", {"csrf_token": token}).status_code == 404


def test_reauthorize_round_trip_and_a_reused_state_stores_nothing(page: Page, world: World) -> None:
    world.fake.authorize_as = "alice"
    store = TokenStore(world.state_dir)
    start = page.post("/accounts/default/authorize", {"csrf_token": page.token()})
    assert start.status_code == 303
    authorize_url = start.headers["Location"]
    assert authorize_url.startswith(world.fake.accounts_url + "/authorize?")
    import requests

    consent = requests.get(authorize_url, allow_redirects=False, timeout=10)
    back = consent.headers["Location"]
    assert back.startswith(f"http://127.0.0.1:{world.redirect_port}/callback?")
    path = back.split(str(world.redirect_port), 1)[1]
    done = page.get(path)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "Authorized" in done.get_data(as_text=True)
    token = store.load()
    assert token is not None
    assert token.user_id == "alice"
    before = store.path.read_bytes()
    reused = page.get(path)
    assert reused.status_code == 400
    assert "already used" in reused.get_data(as_text=True)
    forged = page.get(path.replace("state=", "state=x"))
    assert forged.status_code == 400
    assert store.path.read_bytes() == before
    for secret in world.secrets():
        assert secret not in done.get_data(as_text=True)


def test_a_password_is_asked_for_when_set(world: World, tmp_path: Path) -> None:
    world.write_config({"tick": every(3600)})
    page = Page(world, password="s3cret-pass")
    assert page.get("/").status_code == 401
    wrong = base64.b64encode(b"me:nope").decode()
    assert page.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    right = base64.b64encode(b"me:s3cret-pass").decode()
    assert page.get("/", headers={"Authorization": f"Basic {right}"}).status_code == 200
