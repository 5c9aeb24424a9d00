"""Real file-system faults for tests: a small tmpfs that fills, and read-only bind mounts.

Both need root (or CAP_SYS_ADMIN); where mounting is impossible the test is skipped, saying why.
Every mount is undone when its context ends, whatever the test did.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip() or f"mount exited {done.returncode}"
        pytest.skip(f"cannot mount here ({reason}); file-system fault tests need root")


def _umount(path: Path) -> None:
    # Lazy: a daemon killed a moment ago may still hold a file open for an instant.
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


class SmallDisk:
    """A tmpfs mounted at `path`; `fill()` uses up its space, `free()` gives it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler.bin"

    def fill(self) -> None:
        """Writes until the disk says ENOSPC (the filler file stays until `free()`)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # Pages first, then single bytes, so not even a partial page is left.
            for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
                while True:
                    try:
                        os.write(fd, chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        """Removes the filler."""
        self.filler.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str = "300k") -> Iterator[SmallDisk]:
    """A tmpfs of `size` at `path` (created if needed), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; file-system fault tests skipped")
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield SmallDisk(path)
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` made read-only by a bind mount onto itself, until the context ends."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root; file-system fault tests skipped")
    _mount("--bind", str(path), str(path))
    try:
        done = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(path)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({done.stderr.strip()})")
        yield path
    finally:
        _umount(path)
