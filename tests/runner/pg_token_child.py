"""Child process for test_tokens_postgres: a token manager on the shared PostgreSQL token store.

Usage: python pg_token_child.py STATE_URL ACCOUNTS_URL API_URL CLIENT_ID CLIENT_SECRET SECONDS
For SECONDS it refreshes in the background (as the daemon does) and calls GET /v1/me with
whatever access token the manager hands out, as fast as it can. Prints one JSON line: how many
calls it made and every failure it met. Its log goes to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import requests

from runner.config import SpotifyConfig
from runner.errors import RunnerError
from runner.state.tokens import PostgresTokenStore
from runner.tokens import TokenManager


def main() -> None:
    url, accounts_url, api_url, client_id, secret, seconds = sys.argv[1:7]
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    config = SpotifyConfig(
        client_id=client_id,
        client_secret=secret,  # type: ignore[arg-type]
        accounts_url=accounts_url,
        api_url=api_url,
    )
    manager = TokenManager(config, PostgresTokenStore(url), refresh_margin=1.0)
    manager.start()
    calls, failures = 0, []
    deadline = time.monotonic() + float(seconds)
    with requests.Session() as session:
        while time.monotonic() < deadline:
            try:
                token = manager.get_access_token()
            except RunnerError as exc:
                failures.append(f"token: {exc}")
                time.sleep(0.2)
                continue
            answer = session.get(
                f"{api_url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            calls += 1
            if answer.status_code != 200:
                failures.append(f"GET /me: HTTP {answer.status_code}")
            time.sleep(0.05)
    manager.stop()
    sys.stdout.write(json.dumps({"calls": calls, "failures": failures}) + "\n")


if __name__ == "__main__":
    main()
