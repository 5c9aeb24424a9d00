"""The hello job, run the way the daemon runs it, against the fake Spotify."""

from __future__ import annotations

from pathlib import Path

from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness


def test_hello_greets_the_account_and_counts_runs(tmp_path: Path) -> None:
    with FakeSpotify() as fake, JobHarness(fake, tmp_path) as harness:
        first = harness.run("hello", {"greeting": "Hi"})
        second = harness.run("hello", {"greeting": "Hi"})
        assert harness.state() == {"runs": 2}
    assert first.status is RunStatus.OK
    assert first.summary == "Hi, Alice! (run 1)"
    assert second.summary == "Hi, Alice! (run 2)"


def test_hello_dry_run_keeps_no_state(tmp_path: Path) -> None:
    with FakeSpotify() as fake, JobHarness(fake, tmp_path) as harness:
        outcome = harness.run("hello", dry_run=True)
        assert outcome.status is RunStatus.OK
        assert outcome.summary == "dry run: Hello, Alice! (run 1)"
        assert harness.state() == {}
