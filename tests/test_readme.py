"""The README's job example and its test are real: extracted and run here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(# (\S+)\n.*?)```", re.DOTALL)


def readme_files() -> dict[str, str]:
    """The python blocks whose first line names a file, by that name."""
    return {m.group(2): m.group(1) for m in BLOCK.finditer(README.read_text())}


def test_readme_names_a_job_and_its_test() -> None:
    assert set(readme_files()) == {
        "my_jobs/liked_count.py",
        "tests/test_liked_count.py",
        "my_jobs/curate.py",
        "tests/test_curate.py",
    }


def test_readme_job_example_passes_its_own_test(tmp_path: Path) -> None:
    for name, text in readme_files().items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # The fake_spotify fixture comes from the installed pytest plugin, as for any job author.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_readme_playlist_updater_reference_is_valid_options() -> None:
    from jobs.playlist_updater.options import Options

    text = README.read_text()
    block = text.split("Every option:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    # The reference writes ID where a real 22-character id goes.
    block = block.replace("ID", "4uLU6hMCjMI75M1A2tKUQC")
    options = Options.model_validate(yaml.safe_load(block)["options"])
    assert len(options.sources) == 7
    assert options.allow_empty is False
    assert options.max_tracks == 100
