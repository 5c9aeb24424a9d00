"""Deferred imports (the daemon's way to a short start): free until used, then the real thing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.lazy import defer, load_deferred


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package `slowpkg` that counts how often its body runs, in a file beside it."""
    root = tmp_path / "slowpkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            counter = Path(__file__).with_name("runs.txt")
            counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
            class Oops(Exception):
                pass
            VALUE = 42
            """
        )
    )
    (root / "extra.py").write_text("FROM_EXTRA = 'extra'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [n for n in sys.modules if n == "slowpkg" or n.startswith("slowpkg.")]:
        del sys.modules[name]


def runs(package: Path) -> int:
    counter = package / "runs.txt"
    return int(counter.read_text()) if counter.exists() else 0


def test_importing_a_deferred_module_runs_nothing_until_it_is_used(package: Path) -> None:
    defer("slowpkg")
    import slowpkg  # type: ignore[import-not-found]
    import slowpkg as again  # type: ignore[import-not-found]  # a second import: still nothing

    assert runs(package) == 0
    assert again is slowpkg
    assert slowpkg.VALUE == 42
    assert runs(package) == 1
    assert slowpkg.VALUE == 42  # read again: not run again
    assert runs(package) == 1


def test_an_except_clause_naming_it_works(package: Path) -> None:
    defer("slowpkg")
    import slowpkg

    def raise_other() -> None:
        try:
            raise KeyError("not the module's")
        except slowpkg.Oops:
            pytest.fail("KeyError is no slowpkg.Oops")

    with pytest.raises(KeyError):
        raise_other()
    try:
        raise slowpkg.Oops
    except slowpkg.Oops:
        pass
    assert runs(package) == 1


def test_submodules_and_from_imports_get_the_real_package(package: Path) -> None:
    defer("slowpkg")
    import slowpkg
    from slowpkg.extra import FROM_EXTRA  # type: ignore[import-not-found]

    assert FROM_EXTRA == "extra"
    assert slowpkg.extra.FROM_EXTRA == "extra"
    assert runs(package) == 1


def test_threads_using_it_at_once_load_it_once(package: Path) -> None:
    defer("slowpkg")
    import slowpkg

    seen: list[int] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        seen.append(slowpkg.VALUE)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [42] * 8
    assert runs(package) == 1


def test_load_deferred_loads_now(package: Path) -> None:
    defer("slowpkg")
    load_deferred()
    assert runs(package) == 1
    assert type(sys.modules["slowpkg"]).__name__ == "module"


def test_an_imported_or_missing_module_is_left_alone() -> None:
    defer("json")  # already imported
    assert type(sys.modules["json"]).__name__ == "module"
    defer("no_such_module_anywhere")
    assert "no_such_module_anywhere" not in sys.modules


def test_the_daemon_reaches_ready_without_spotipy(tmp_path: Path) -> None:
    # What `run` does before READY=1 (config, job modules, schedules) never touches spotipy.
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            spotify: {{client_id: abc123, client_secret: s3cr3t-value-0123}}
            timezone: UTC
            state_dir: {tmp_path / "state"}
            jobs:
              hello: {{job: hello, schedule: {{cron: "@hourly"}}}}
              radio:
                job: playlist_updater
                schedule: {{every: 1h}}
                options:
                  playlist: {{name: Lazy}}
                  sources: [{{tracks: ["spotify:track:4uLU6hMCjMI75M1A2tKUQC"]}}]
            """
        )
    )
    probe = textwrap.dedent(
        f"""
        import sys
        from runner.lazy import defer
        defer("spotipy")
        from runner.daemon import Daemon
        daemon = Daemon({str(config)!r})
        daemon.config, daemon.jobs = daemon._load()
        print(type(sys.modules["spotipy"]).__name__, "redis" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["_Deferred", "False"], result.stderr
