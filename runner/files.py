"""Private directories, and what a failed file operation means in words a user can act on.

Everything spotify-runner keeps (tokens, history, job state) lives under `state_dir`, so every
directory it creates there is 0700 from the moment it exists, parents included: `mkdir(parents=True,
mode=0o700)` gives the mode to the last component only, and the others get 0777 minus the umask.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

PRIVATE_DIR = 0o700

# errno -> what it means for the user, and what to do about it.
_MEANINGS = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is exceeded: free some space",
    errno.EROFS: "the file system is read-only: make it writable",
    errno.EACCES: "permission denied: check the owner and mode",
    errno.EPERM: "permission denied: check the owner and mode",
    errno.EISDIR: "it is a directory: move it away",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EIO: "an I/O error: check the disk",
}


def describe_os_error(exc: OSError) -> str:
    """One phrase for an OSError: what happened and what to do (`the disk is full: free...`)."""
    meaning = _MEANINGS.get(exc.errno or -1)
    if meaning is not None:
        return meaning
    return exc.strerror or type(exc).__name__


def private_dir(path: Path) -> Path:
    """Creates `path` and its missing parents, each exactly 0700; existing ones are left alone.

    Raises:
        OSError: a component cannot be created (read-only file system, permissions, a file in
            the way); its `filename` is `path`.
    """
    path = Path(path)
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if not directory.is_dir():
                # A file in the way: said of the folder asked for, like mkdir(parents=True).
                raise NotADirectoryError(
                    errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)
                ) from None
            continue  # someone else made it meanwhile; theirs to keep
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        # The umask can only remove bits; chmod makes it exactly 0700 either way.
        os.chmod(directory, PRIVATE_DIR)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` at once (a temporary file renamed over it), mode 0600.

    A crash leaves the old file or the new one, never half of one.

    Raises:
        OSError: the directory or the disk refused.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
