"""`spotify-runner demo`: the real daemon, the real `auth` flow, against the embedded fake Spotify.

It takes `config.example.yaml`, points it at a fake Spotify on 127.0.0.1, shortens every schedule
to a few seconds, and adds a second account: the example's jobs run as alice, and bob has a
playlist job of his own. Both authorize through a scripted browser, and the daemon runs as a
subprocess while a pretend radio station plays songs. Midway bob removes the app's access: his
job ends as needs_auth while alice's keep running, until `auth --account bob` brings it back,
with no restart. Then it shows `spotify-runner jobs` and each account's playlists.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from runner.testing import FakeSpotify
from runner.testing.ports import free_port
from runner.testing.spinitron import FakeSpinitron

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"
USER = "alice"
OTHER = "bob"
OTHER_JOB = "bob-liked"
# How long the demo may run past its --seconds while a job has not finished its first run yet.
EXTRA_WAIT = 60.0


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _seed(fake: FakeSpotify) -> list[str]:
    """A library for the pretend account: liked songs, top tracks, a catalog to play from."""
    uris = fake.make_tracks(400, seed=7)
    fake.save_tracks(USER, uris[:60])
    fake.set_top_tracks(USER, "short_term", uris[60:110])
    for uri in uris[110:140]:
        fake.add_play(USER, uri)
    fake.add_user(OTHER, "Bob")
    fake.save_tracks(OTHER, uris[380:])
    return uris[140:380]


def _line_for(fake: FakeSpotify, uri: str, rng: random.Random) -> str:
    """A feed line as a radio site would print it: mostly "Artist - Title", sometimes a URI."""
    track = fake.track(uri)
    if rng.random() < 0.3:
        return uri
    return f"{track['artists'][0]['name']} - {track['name']}"


def _station_job(station: FakeSpinitron) -> dict[str, Any]:
    """A radio station's spins from its Spinitron account (the fake's), newest at the top."""
    return {
        "job": "playlist_updater",
        "schedule": {"every": "15m"},
        "options": {
            "playlist": {"name": "Station spins", "description": "From the station's Spinitron"},
            "sources": [
                {
                    "spinitron": {
                        "api_key": "${SPINITRON_KEY}",
                        "api_url": station.api_url,
                        "count": 50,
                    }
                }
            ],
            "overrides": {"WXYZ - Station ID": None},
            "mode": "append",
            "position": "top",
            "max_tracks": 50,
        },
    }


def _demo_config(
    workdir: Path, fake: FakeSpotify, port: int, every: int, station: FakeSpinitron
) -> Path:
    """config.example.yaml, pointed at the fake, with schedules of a few seconds."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    spotify = data["spotify"]
    spotify["accounts_url"] = fake.accounts_url
    spotify["api_url"] = fake.api_url
    spotify["redirect_uri"] = f"http://127.0.0.1:{port}/callback"
    # The daemon's /metrics and /healthz get a port of their own: bob re-authorizes while it
    # runs, and `auth` must be able to catch the redirect on the redirect URI's port.
    data["http"] = {"listen": f"127.0.0.1:{free_port()}"}
    spotify.pop("refresh_token", None)
    data["state_dir"] = str(workdir / "state")
    data.pop("jobs_dir", None)
    data.setdefault("jobs", {})["station"] = _station_job(station)
    data["accounts"] = {USER: {}, OTHER: {}}
    for job in data["jobs"].values():
        job["account"] = USER
    data["jobs"][OTHER_JOB] = {
        "job": "playlist_updater",
        "account": OTHER,
        "options": {
            "playlist": {"name": "Bob's liked songs", "public": True},
            "sources": [{"saved_tracks": {}}],
            "mode": "replace",
        },
    }
    for i, job in enumerate(data.get("jobs", {}).values()):
        job["schedule"] = {"every": f"{every + i % 4}s"}  # staggered, none longer than 6s
        job["catch_up"] = False
        feed_sources = [s for s in job.get("options", {}).get("sources", []) if isinstance(s, dict)]
        for source in feed_sources:
            feed = source.get("feed")
            if isinstance(feed, dict) and "file" in feed:
                feed["file"] = str(workdir / Path(feed["file"]).name)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class _Radio(threading.Thread):
    """Plays a song every couple of seconds by appending it to every feed file, as a log."""

    def __init__(
        self, fake: FakeSpotify, catalog: list[str], feeds: list[Path], station: FakeSpinitron
    ) -> None:
        super().__init__(daemon=True, name="demo-radio")
        self.fake, self.catalog, self.feeds, self.station = fake, catalog, feeds, station
        self.rng = random.Random(3)
        self.stop = threading.Event()
        self.played: list[str] = []

    def play(self) -> None:
        # Now and then a song comes round again: it must move to the top, not vanish.
        if self.played and self.rng.random() < 0.2:
            uri = self.rng.choice(self.played[-20:])
        else:
            uri = self.catalog[len(self.played) % len(self.catalog)]
        self.played.append(uri)
        line = _line_for(self.fake, uri, self.rng)
        for feed in self.feeds:
            with feed.open("a") as out:
                out.write(line + "\n")
        self.fake.add_play(USER, uri)
        # The station logs the spin in Spinitron too, mostly with the recording's ISRC.
        track = self.fake.track(uri)
        code = track.get("external_ids", {}).get("isrc") if self.rng.random() < 0.7 else None
        self.station.add_spin(track["artists"][0]["name"], track["name"], isrc=code)
        if self.rng.random() < 0.1:
            self.station.add_spin("WXYZ", "Station ID", duration=10)

    def run(self) -> None:
        ticks = 0
        while not self.stop.wait(1.5):
            ticks += 1
            self.play()
            if ticks % 4 == 0:
                # Meanwhile the listener likes a song: the Liked Songs mirror follows.
                self.fake.save_tracks(USER, [self.catalog[-ticks]])


def _feeds_of(config_path: Path) -> list[Path]:
    data = yaml.safe_load(config_path.read_text())
    feeds = []
    for job in data.get("jobs", {}).values():
        for source in job.get("options", {}).get("sources", []):
            feed = source.get("feed") if isinstance(source, dict) else None
            if isinstance(feed, dict) and "file" in feed:
                feeds.append(Path(feed["file"]))
    return feeds


def _has_run(job: str, lines: list[str], status: str = "", after: int = 0) -> bool:
    """Whether the daemon's log shows a finished run of the job (its run line: 'JOB: STATUS in'),
    with that status if given, among the lines from `after` on."""
    prefix = f"{job}: {status}"
    return any(
        "runner.execution" in line and prefix in line and " in " in line for line in lines[after:]
    )


def _wait_until(check: Any, limit: float, daemon: subprocess.Popen[str]) -> bool:
    deadline = time.monotonic() + limit
    while daemon.poll() is None and time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def _pump(stream: Any, lines: list[str]) -> None:
    """Shows what each run did (the daemon's run lines), keeps everything for the end."""
    for raw in stream:
        line = raw.rstrip("\n")
        lines.append(line)
        if "runner.execution" in line or "runner.daemon" in line or line.startswith("ERROR"):
            _say("   " + line.split(": ", 1)[-1] if "runner.execution" in line else "   " + line)


def run_demo(*, seconds: float = 20.0, keep: Path | None = None, every: int = 3) -> int:
    """Runs the demo; returns the exit code (0 when every job ran ok at least once)."""
    if not EXAMPLE.is_file():
        _say(f"error: {EXAMPLE} not found: run the demo from a source checkout (make demo)")
        return 2
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="spotify-runner-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with FakeSpotify() as fake, FakeSpinitron() as station:
            return _run(fake, station, workdir, seconds, every)
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", "-c", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _run(
    fake: FakeSpotify, station: FakeSpinitron, workdir: Path, seconds: float, every: int
) -> int:
    catalog = _seed(fake)
    config = _demo_config(workdir, fake, free_port(), every, station)
    feeds = _feeds_of(config)
    radio = _Radio(fake, catalog, feeds, station)
    for _ in range(8):
        radio.play()
    for feed in feeds:
        # A line no search can match: reported as unmatched, never replaced by a wrong track.
        with feed.open("a") as out:
            out.write("The Nobodies - A Song Nobody Ever Recorded\n")
    env = dict(os.environ)
    env.update(
        SPOTIFY_CLIENT_ID=FakeSpotify.CLIENT_ID,
        SPOTIFY_CLIENT_SECRET=FakeSpotify.CLIENT_SECRET,
        SPINITRON_KEY=FakeSpinitron.API_KEY,
        BROWSER=f"{sys.executable} -m runner.testing.browser %s",
        PYTHONUNBUFFERED="1",
    )
    env.pop("SPOTIFY_RUNNER_CONFIG", None)
    _say(f"Fake Spotify on {fake.base_url}; demo files in {workdir}")
    _say(
        f"\n1. spotify-runner auth --account {USER}, then --account {OTHER}   (a scripted "
        "browser approves each consent page, as that user)"
    )
    for user in (USER, OTHER):
        code = _authorize(fake, config, env, user)
        if code != 0:
            return code

    _say(
        f"\n2. spotify-runner run   (the daemon, for {seconds:.0f}s; the radio plays a song "
        "every 1.5s)"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "runner", "-c", str(config), "run"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    assert daemon.stderr is not None
    pump = threading.Thread(target=_pump, args=(daemon.stderr, lines), daemon=True)
    pump.start()
    radio.start()
    start = time.monotonic()
    revoked = _revoke_and_reauthorize(fake, config, env, daemon, lines)
    # At least `seconds`, then until every job has finished a run (a loaded machine may be slow
    # to reach the longest interval), but never more than EXTRA_WAIT beyond.
    names = list(yaml.safe_load(config.read_text())["jobs"])
    while daemon.poll() is None:
        elapsed = time.monotonic() - start
        if elapsed >= seconds + EXTRA_WAIT or (
            elapsed >= seconds and all(_has_run(name, lines) for name in names)
        ):
            break
        time.sleep(0.2)
    radio.stop.set()
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    code = daemon.wait(timeout=60)
    pump.join(timeout=5)
    _say(f"   daemon exited with {code}")

    _say("\n3. spotify-runner jobs")
    status = _cli(config, env, "jobs")
    for line in status.stdout.strip().splitlines():
        _say("   " + line)

    _say("\n4. Each account's playlists on the (fake) Spotify")
    for user in (USER, OTHER):
        _say(f"   {user}:")
        for pid in fake.user_playlist_ids(user):
            uris = fake.playlist_uris(pid)
            _say(f"     {fake.playlist_details(pid)['name']}: {len(uris)} tracks, top 3:")
            for uri in uris[:3]:
                track = fake.track(uri)
                _say(f"       {track['artists'][0]['name']} - {track['name']}")
    history = _cli(config, env, "history", "--json", "--limit", "1000")
    return _verdict(code, _cli(config, env, "jobs", "--json"), history, revoked)


def _authorize(fake: FakeSpotify, config: Path, env: dict[str, str], user: str) -> int:
    fake.authorize_as = user  # who is logged in to Spotify in the browser
    done = _cli(config, env, "auth", "--account", user, "--timeout", "30")
    shown = [line for line in done.stdout.splitlines() if not line.startswith(("Opening", "http"))]
    for line in shown + done.stderr.strip().splitlines():
        _say("   " + line)
    return done.returncode


def _revoke_and_reauthorize(
    fake: FakeSpotify,
    config: Path,
    env: dict[str, str],
    daemon: subprocess.Popen[str],
    lines: list[str],
) -> bool:
    """Bob removes the app's access, then authorizes again; the daemon keeps running.

    Returns:
        True when bob's job went from needs_auth back to ok without a restart.
    """
    if not _wait_until(lambda: _has_run(OTHER_JOB, lines, "ok"), EXTRA_WAIT, daemon):
        return False
    _say(f"\n   >> {OTHER} removes spotify-runner's access in his Spotify account settings")
    fake.revoke_user(OTHER)
    mark = len(lines)
    if not _wait_until(lambda: _has_run(OTHER_JOB, lines, "needs auth", mark), EXTRA_WAIT, daemon):
        return False
    _say(f"\n   >> spotify-runner auth --account {OTHER}   (while the daemon runs)")
    if _authorize(fake, config, env, OTHER) != 0:
        return False
    mark = len(lines)
    return _wait_until(lambda: _has_run(OTHER_JOB, lines, "ok", mark), EXTRA_WAIT, daemon)


def _verdict(
    daemon_code: int,
    status: subprocess.CompletedProcess[str],
    history: subprocess.CompletedProcess[str],
    revoked: bool,
) -> int:
    """0 when the daemon stopped cleanly, every job's last run was ok, bob's job came back after
    his revocation, and no run of alice's was anything but ok."""
    jobs = json.loads(status.stdout)["jobs"] if status.returncode == 0 else []
    bad = [j["name"] for j in jobs if (j["last_run"] or {}).get("status") != "ok"]
    runs = json.loads(history.stdout) if history.returncode == 0 else []
    disturbed = sorted(
        {r["job"] for r in runs if r["account"] == USER and r["status"] not in ("ok", "skipped")}
    )
    if daemon_code != 0 or not jobs or bad or disturbed or not revoked:
        _say(
            f"\ndemo failed: daemon exit {daemon_code}; jobs not ok: {', '.join(bad) or '-'}; "
            f"{USER}'s jobs disturbed: {', '.join(disturbed) or '-'}; "
            f"{OTHER} revoked and back: {'yes' if revoked else 'no'}"
        )
        return 1
    _say(
        f"\nEvery job ran ok ({len(jobs)} jobs); {OTHER}'s job paused while his access was "
        f"revoked and came back after 'auth --account {OTHER}', while {USER}'s jobs never "
        "stopped; the daemon stopped cleanly on SIGTERM."
    )
    return 0
