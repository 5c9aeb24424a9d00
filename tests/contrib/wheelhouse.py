"""Wheels of the project and of everything it needs, made offline from this environment.

The project's own wheel is built from a copy of its sources with `pip wheel --no-deps
--no-build-isolation` (setuptools comes from the test extra). Its dependencies are already
installed here, from wheels: each is packed back into a wheel from its installed files (RECORD)
and the WHEEL file it was installed from, so a fresh venv can `pip install --no-index` them.
Dependencies are followed for the *target* interpreter's version (Debian's Python 3.11.2 needs
async-timeout under redis, which this one does not).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "spotify-runner"
# What a wheel of the project is built from.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "runner", "jobs")
# Metadata the installer writes; not part of a wheel.
_INSTALLER_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


class WheelhouseError(Exception):
    """A wheel could not be made."""


def build_project_wheel(dest: Path, scratch: Path) -> Path:
    """Builds the project's wheel into `dest` from a clean copy of its sources."""
    src = scratch / "src"
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(dest),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise WheelhouseError(f"pip wheel failed:\n{done.stdout}\n{done.stderr}")
    (wheel,) = dest.glob("spotify_runner-*.whl")
    return wheel


def dependency_closure(python_version: str) -> list[metadata.Distribution]:
    """The installed distributions the project needs on Python `python_version` (e.g. 3.11.2)."""
    env = {
        "python_full_version": python_version,
        "python_version": ".".join(python_version.split(".")[:2]),
        "extra": "",
    }
    seen: dict[str, metadata.Distribution] = {}
    todo = list(metadata.requires(PROJECT) or [])
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise WheelhouseError(
                f"{req.name} is needed on Python {python_version} but is not installed here: "
                "pip install -e '.[test]'"
            ) from None
        if not req.specifier.contains(dist.version, prereleases=True):
            raise WheelhouseError(f"{req.name} {dist.version} does not satisfy {req}")
        seen[name] = dist
        todo.extend(dist.requires or [])
    return sorted(seen.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def compressed_tag(tags: list[str]) -> str:
    """A wheel file name's tag for all `tags`: py2-none-any and py3-none-any: py2.py3-none-any."""
    parts: list[list[str]] = [[], [], []]
    for tag in tags:
        for i, part in enumerate(tag.split("-")):
            if part not in parts[i]:
                parts[i].append(part)
    return "-".join(".".join(p) for p in parts)


def repack(dist: metadata.Distribution, dest: Path) -> Path:
    """Packs an installed distribution back into a wheel in `dest`."""
    files = dist.files
    wheel_info = dist.read_text("WHEEL")
    if files is None or wheel_info is None:
        raise WheelhouseError(f"{dist.metadata['Name']} was not installed from a wheel")
    tags = re.findall(r"^Tag: (\S+)$", wheel_info, flags=re.M)
    if not tags:
        raise WheelhouseError(f"{dist.metadata['Name']}: its WHEEL file names no tag")
    info_dirs = {str(f).split("/")[0] for f in files if str(f).split("/")[0].endswith(".dist-info")}
    if len(info_dirs) != 1:
        raise WheelhouseError(f"{dist.metadata['Name']}: not one .dist-info ({info_dirs})")
    (info_dir,) = info_dirs
    stem = info_dir.removesuffix(".dist-info")
    path = dest / f"{stem}-{compressed_tag(tags)}.whl"
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for file in files:
            name = str(file)
            top, _, rest = name.partition("/")
            # Scripts and data outside site-packages are remade by pip (entry points), or unused.
            if name.startswith("..") or "__pycache__" in name or name.endswith(".pyc"):
                continue
            if top == info_dir and rest in _INSTALLER_FILES:
                continue
            data = Path(str(dist.locate_file(file))).read_bytes()
            wheel.writestr(name, data)
            records.append(_record_line(name, data))
        records.append(f"{info_dir}/RECORD,,")
        wheel.writestr(f"{info_dir}/RECORD", "\n".join(records) + "\n")
    return path


def build_wheelhouse(dest: Path, scratch: Path, python_version: str) -> list[Path]:
    """Every wheel a fresh venv on Python `python_version` needs to install the project."""
    dest.mkdir(parents=True, exist_ok=True)
    wheels = [build_project_wheel(dest, scratch)]
    wheels.extend(repack(dist, dest) for dist in dependency_closure(python_version))
    return wheels
