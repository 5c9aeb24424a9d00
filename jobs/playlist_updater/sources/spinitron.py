"""`spinitron: {api_key: ${SPINITRON_KEY}, count: 50}`: a radio station's spins (Spinitron API v2).

Reads `GET {api_url}/spins` with the station's API key as a Bearer token (Spinitron's preferred
way; never in the URL, where logs would keep it). Spins come newest first, each with `artist`,
`song`, `start` and often an `isrc`, which is matched exactly before any text.

- `replace`: the latest `count` spins (one request).
- `append`: the spins since the newest one already taken (`start=`), paged through `_links.next`
  up to `max_pages`; a poll with nothing new is one request answering that one known spin.

Spinitron asks API users to cache and not to poll on every page view; a schedule of a few
minutes is plenty (spins last minutes).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from pydantic import Field, SecretStr

from jobs.playlist_updater.sources import Play, Reading, SourceContext
from jobs.playlist_updater.sources.formats import clean, isrc, parse_time
from jobs.playlist_updater.sources.http import Response
from runner.context import JobOptions
from runner.errors import RunnerError, TransientError

API_URL = "https://spinitron.com/api"


class Options(JobOptions):
    """A station's spins.

    Attributes:
        api_key: the station's API key (Spinitron: Admin -> Automation & API).
        count: spins per request (Spinitron allows 1 to 200); in `replace` mode, the playlist.
        max_pages: pages read at most in one `append` run (after a long pause).
        api_url: Spinitron's API root (tests point it at a fake).
    """

    api_key: SecretStr = Field(min_length=1)
    count: int = Field(default=50, ge=1, le=200)
    max_pages: int = Field(default=5, ge=1, le=50)
    api_url: str = Field(default=API_URL, pattern=r"^https?://\S+$")


WHAT = "Spinitron"


def _get(src: SourceContext, options: Options, url: str, params: dict[str, Any] | None) -> Any:
    response = src.http.get(
        url,
        what=WHAT,
        params=params,
        headers={"Authorization": f"Bearer {options.api_key.get_secret_value()}"},
        accept=("json",),
        raise_for_status=False,
    )
    if response.status >= 400:
        raise _refusal(response)
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise TransientError(f"{WHAT} answered JSON without items; retrying later")
    return data


def _refusal(response: Response) -> RunnerError:
    if response.status in (401, 403):
        return RunnerError(
            f"{WHAT} refused the API key (HTTP {response.status}): check spinitron.api_key"
        )
    return RunnerError(f"{WHAT} answered HTTP {response.status}; the playlist was left alone")


def _play(spin: Any) -> Play | None:
    if not isinstance(spin, dict):
        return None
    artist, song = clean(str(spin.get("artist") or "")), clean(str(spin.get("song") or ""))
    code = isrc(spin.get("isrc"))
    if not (artist and song) and code is None:
        return None
    return Play(
        artist=artist,
        title=song,
        isrc=code,
        played_at=parse_time(spin.get("start")),
        id=str(spin["id"]) if spin.get("id") is not None else None,
    )


def read(src: SourceContext, options: Options) -> Reading:
    """The station's spins, newest first."""
    url = options.api_url.rstrip("/") + "/spins"
    params: dict[str, Any] = {"count": options.count}
    if src.mode == "append" and src.since is not None:
        params["start"] = src.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
    spins: list[Any] = []
    data = _get(src, options, url, params)
    spins.extend(data["items"])
    pages = 1
    if src.mode == "append":
        while pages < options.max_pages:
            link = ((data.get("_links") or {}).get("next") or {}).get("href")
            if not isinstance(link, str) or not link.startswith(options.api_url.rstrip("/")):
                break  # no next page, or one elsewhere (the key goes only to api_url)
            data = _get(src, options, link, None)
            spins.extend(data["items"])
            pages += 1
    plays = [play for play in map(_play, spins) if play is not None]
    return Reading(plays, newest_first=True)
