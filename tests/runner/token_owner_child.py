"""Child process for test_token_owner: a token manager whose store another user takes over.

Usage: python token_owner_child.py STATE_DIR ACCOUNTS_URL API_URL CLIENT_ID CLIENT_SECRET [UID]
With UID (started as root), it becomes that user once everything is imported: the interpreter
itself may live where that user cannot read (a pyenv under /root).
Reads one command a line from stdin and answers one JSON line on stdout:
`refresh` forces a refresh of the access token; `status` reports what `jobs` and runs would see.
Its log (the manager's) goes to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from runner.config import SpotifyConfig
from runner.errors import RunnerError
from runner.tokens import TokenManager, TokenStore


def main() -> None:
    state_dir, accounts_url, api_url, client_id, secret = sys.argv[1:6]
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    config = SpotifyConfig(
        client_id=client_id,
        client_secret=secret,  # type: ignore[arg-type]
        accounts_url=accounts_url,
        api_url=api_url,
    )
    if len(sys.argv) > 6:
        uid = int(sys.argv[6])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    manager = TokenManager(config, TokenStore(Path(state_dir)))
    for line in sys.stdin:
        command = line.strip()
        answer: dict[str, object]
        if command == "refresh":
            try:
                manager.refresh(force=True)
                answer = {"ok": True}
            except RunnerError as exc:
                answer = {"ok": False, "error": str(exc)}
        else:
            status = manager.status()
            answer = {"needs_auth": status.needs_auth, "reason": status.reason}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
