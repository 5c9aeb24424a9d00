"""A tiny stand-in browser for tests: `BROWSER="python -m runner.testing.browser %s"`.

It GETs the authorize URL without following redirects, then GETs the `Location` it was sent to
(the loopback catcher of `spotify-runner auth`) and exits: 0 when both answered, 1 otherwise.
Nothing is printed, so no code or token reaches a test's output.
"""

from __future__ import annotations

import sys

import requests


def visit(url: str, timeout: float = 10.0) -> int:
    """Follows one redirect by hand, as a browser would after the user approved.

    Args:
        url: the authorize URL.
        timeout: seconds per request.

    Returns:
        The process exit code.
    """
    with requests.Session() as session:
        first = session.get(url, allow_redirects=False, timeout=timeout)
        location = first.headers.get("Location")
        if first.status_code not in (301, 302, 303, 307) or not location:
            return 1
        session.get(location, allow_redirects=False, timeout=timeout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m runner.testing.browser URL`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m runner.testing.browser URL\n")
        return 2
    try:
        return visit(args[0])
    except requests.RequestException:
        return 1


if __name__ == "__main__":
    sys.exit(main())
