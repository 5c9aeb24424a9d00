"""spotipy clients pointed at a `FakeSpotify`: as a user (a token) or as the app itself."""

from __future__ import annotations

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler

from runner.testing.fake import FakeSpotify


def user_client(fake: FakeSpotify, token: str, session: requests.Session) -> spotipy.Spotify:
    """A spotipy client sending `token` to `fake`.

    Pass a plain `requests.Session`: spotipy mounts its retry adapter only on sessions it
    builds, and that adapter hides 429/5xx behind "Max Retries"; this way tests see what the
    fake really answered.
    """
    client = spotipy.Spotify(auth=token, requests_session=session)
    client.prefix = fake.api_url + "/"
    return client


def app_credentials(
    fake: FakeSpotify, client_secret: str | None = None
) -> spotipy.SpotifyClientCredentials:
    """A client-credentials auth manager that asks `fake` for the app's own token."""

    class _Credentials(spotipy.SpotifyClientCredentials):  # type: ignore[misc]
        OAUTH_TOKEN_URL = fake.accounts_url + "/api/token"

    secret = fake.CLIENT_SECRET if client_secret is None else client_secret
    return _Credentials(fake.CLIENT_ID, secret, cache_handler=MemoryCacheHandler())


def app_client(fake: FakeSpotify, session: requests.Session) -> spotipy.Spotify:
    """A spotipy client on the app's client-credentials token (catalog reads only)."""
    client = spotipy.Spotify(auth_manager=app_credentials(fake), requests_session=session)
    client.prefix = fake.api_url + "/"
    return client
