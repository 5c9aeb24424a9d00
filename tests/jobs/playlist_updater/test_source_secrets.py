"""Source keys never reach the logs: the shapes urllib3's debug lines and headers give them."""

from __future__ import annotations

import pytest

from jobs.playlist_updater.options import Options
from runner.logs import REDACTED, redact

LASTFM_KEY = "0123456789abcdef0123456789abcdef"
LB_TOKEN = "123e4567-e89b-12d3-a456-426614174000"


@pytest.mark.parametrize(
    "line",
    [
        # urllib3 at debug (-vv) logs the request line, query string included.
        f'http://ws.audioscrobbler.com:80 "GET /2.0/?method=user.getrecenttracks&user=rj'
        f'&api_key={LASTFM_KEY}&format=json HTTP/1.1" 200 512',
        f"https://spinitron.com/api/spins?access-token={LASTFM_KEY}&count=50",
        f"{{'Authorization': 'Token {LB_TOKEN}'}}",
        f"{{'api_key': '{LASTFM_KEY}'}}",
    ],
)
def test_source_secrets_are_redacted_by_shape(line: str) -> None:
    cleaned = redact(line)
    assert LASTFM_KEY not in cleaned
    assert LB_TOKEN not in cleaned
    assert REDACTED in cleaned


def test_ordinary_words_stay() -> None:
    text = "Token refreshed; the token store holds 3 accounts; Error code: 414"
    assert redact(text) == text


def test_validated_options_never_show_a_key() -> None:
    options = Options.model_validate(
        {
            "playlist": {"name": "P"},
            "sources": [
                {"lastfm": {"user": "rj", "api_key": LASTFM_KEY}},
                {"listenbrainz": {"user": "rj", "token": LB_TOKEN}},
                {"spinitron": {"api_key": LASTFM_KEY}},
            ],
        }
    )
    for shown in (repr(options), str(options), options.model_dump_json()):
        assert LASTFM_KEY not in shown
        assert LB_TOKEN not in shown
