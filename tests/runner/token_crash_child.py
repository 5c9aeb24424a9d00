"""Child process for test_token_crash: saves ever-newer tokens until it is killed.

Usage: python token_crash_child.py STATE_DIR
Each save stores refresh token `rt-<n+1>` where `<n>` is the stored one, so the parent can tell
that the store always holds the old or the new token, and never goes back.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from runner.tokens import TokenStore


def main() -> None:
    store = TokenStore(Path(sys.argv[1]))
    announced = False
    while True:
        token = store.load()
        assert token is not None
        n = int(token.refresh_token.removeprefix("rt-")) + 1
        store.save(replace(token, refresh_token=f"rt-{n}", access_token=f"at-{n}" * 40))
        if not announced:
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            announced = True


if __name__ == "__main__":
    main()
