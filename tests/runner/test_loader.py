"""Finding job modules and checking them before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.config import load_config_text
from runner.errors import JobLoadError
from runner.loader import available_jobs, find_job, load_jobs, required_scopes

HEAD = """\
spotify:
  client_id: abc
  client_secret: s3cr3t-value
state_dir: {state}
timezone: UTC
{extra}
jobs:
"""


def make_config(tmp_path: Path, jobs_yaml: str, *, jobs_dir: Path | None = None) -> object:
    extra = f"jobs_dir: {jobs_dir}" if jobs_dir else ""
    text = HEAD.format(state=tmp_path / "state", extra=extra) + textwrap.indent(
        textwrap.dedent(jobs_yaml), "  "
    )
    return load_config_text(text, filename=str(tmp_path / "config.yaml"))


def write_job(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_builtin_job_is_found_with_its_scopes_and_options() -> None:
    job = find_job("hello")
    assert job.origin == "built-in"
    assert job.options_model is not None
    assert job.scopes == frozenset()


def test_drop_in_module_from_jobs_dir(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "my_jobs"
    write_job(jobs_dir, "mine", 'SCOPES = ["user-library-read"]\ndef run(ctx):\n    return "x"\n')
    config = make_config(
        tmp_path,
        """
        a:
          job: mine
          schedule: {every: 1h}
        """,
        jobs_dir=jobs_dir,
    )
    loaded = load_jobs(config)  # type: ignore[arg-type]
    assert loaded["a"].module.origin.endswith("mine.py")
    assert required_scopes(loaded.values()) == {"user-library-read"}
    assert "mine" in available_jobs(jobs_dir)


def test_dotted_path_module() -> None:
    assert find_job("jobs.hello").origin == "jobs.hello"


def test_unknown_job_lists_what_exists(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        a:
          job: helo
          schedule: {every: 1h}
        """,
    )
    with pytest.raises(JobLoadError) as err:
        load_jobs(config)  # type: ignore[arg-type]
    (line,) = err.value.problems
    assert line.startswith(f"{tmp_path / 'config.yaml'}:10:10: jobs.a.job: unknown job 'helo'")
    assert "hello" in line
    assert "playlist_updater" in line


def test_a_name_in_two_sources_is_an_error(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "my_jobs"
    write_job(jobs_dir, "hello", "def run(ctx):\n    return None\n")
    with pytest.raises(LookupError, match="defined more than once"):
        find_job("hello", jobs_dir)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("X = 1\n", r"has no run\(ctx\) function"),
        ("def run():\n    pass\n", "run must take one argument"),
        ("SCOPES = 'a b'\ndef run(ctx):\n    pass\n", "SCOPES must be a list of strings"),
        ("Options = dict\ndef run(ctx):\n    pass\n", "Options must be a pydantic model"),
        ("import nonexistent_module_xyz\n", "failed to import: ModuleNotFoundError"),
    ],
)
def test_broken_modules_get_one_line(tmp_path: Path, body: str, message: str) -> None:
    jobs_dir = tmp_path / "my_jobs"
    write_job(jobs_dir, "broken", body)
    with pytest.raises(LookupError, match=message) as err:
        find_job("broken", jobs_dir)
    assert "\n" not in str(err.value)


def test_options_errors_point_at_the_config_line(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        a:
          job: hello
          schedule: {every: 1h}
          options:
            greeting: [1, 2]
            greting: Hi
        b:
          job: nope
          schedule: {every: 1h}
        """,
    )
    with pytest.raises(JobLoadError) as err:
        load_jobs(config)  # type: ignore[arg-type]
    problems = err.value.problems
    assert len(problems) == 3, problems
    src = str(tmp_path / "config.yaml")
    assert any(p.startswith(f"{src}:13:17: jobs.a.options.greeting: ") for p in problems), problems
    assert any(
        p.startswith(f"{src}:14:7: jobs.a.options.greting: unknown option") for p in problems
    ), problems
    assert any("jobs.b.job: unknown job 'nope'" in p for p in problems)


def test_options_model_that_allows_extras_still_rejects_unknown_keys(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "my_jobs"
    write_job(
        jobs_dir,
        "lax",
        """
        import pydantic
        class Options(pydantic.BaseModel):
            size: int = 1
        def run(ctx):
            return None
        """,
    )
    config = make_config(
        tmp_path,
        """
        a:
          job: lax
          schedule: {every: 1h}
          options: {sise: 3}
        """,
        jobs_dir=jobs_dir,
    )
    with pytest.raises(JobLoadError, match=r"jobs\.a\.options\.sise: unknown option"):
        load_jobs(config)  # type: ignore[arg-type]


def test_job_without_options_model_rejects_options(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "my_jobs"
    write_job(jobs_dir, "plain", "def run(ctx):\n    return None\n")
    config = make_config(
        tmp_path,
        """
        a:
          job: plain
          schedule: {every: 1h}
          options: {x: 1}
        """,
        jobs_dir=jobs_dir,
    )
    with pytest.raises(JobLoadError, match="takes no options"):
        load_jobs(config)  # type: ignore[arg-type]


def test_errors_inside_lists_and_nested_options_point_at_their_own_line(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        a:
          job: playlist_updater
          schedule: {every: 1h}
          options:
            playlist: {name: Mix}
            sources:
              - tracks: [spotify:track:4uLU6hMCjMI75M1A2tKUQC]
              - feed: {file: plays.txt, ordr: newest_first}
        """,
    )
    with pytest.raises(JobLoadError) as err:
        load_jobs(config)  # type: ignore[arg-type]
    (line,) = err.value.problems
    src = str(tmp_path / "config.yaml")
    # The second list item's own line (16), and the nested model's allowed keys.
    assert line.startswith(f"{src}:16:"), line
    assert "sources.1.feed.ordr: unknown option (allowed: " in line
    assert "order" in line


def test_entry_point_job_from_an_installed_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real (if tiny) installed distribution: a package and a dist-info with entry points.
    pkg = tmp_path / "site" / "acme_jobs"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "weekly.py").write_text('SCOPES = ["user-top-read"]\ndef run(ctx):\n    return "ok"\n')
    info = tmp_path / "site" / "acme_jobs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-jobs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[spotify_runner.jobs]\nacme_weekly = acme_jobs.weekly\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    job = find_job("acme_weekly")
    assert job.origin == "entry point acme_jobs.weekly"
    assert job.scopes == {"user-top-read"}
    assert available_jobs(None)["acme_weekly"] == "entry point"
