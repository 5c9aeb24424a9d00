"""`lastfm: {user: NAME, api_key: ${LASTFM_KEY}, kind: recent, limit: 100}`: a Last.fm user.

`kind` is `recent` (scrobbles, `user.getRecentTracks`), `loved` (`user.getLovedTracks`) or `top`
(`user.getTopTracks` over `period`: overall, 7day, 1month, 3month, 6month, 12month). Reads the
JSON API at `api_url` (`format=json`; the key goes in the query, as Last.fm requires, and never
into a message).

- The "now playing" entry (`@attr.nowplaying`) is not a play yet: it is skipped.
- Scrobbles and loves carry their time (`date.uts`) and the recording's MusicBrainz id when
  Last.fm knows it; in `append` mode only scrobbles after the newest one taken are asked for
  (`from=`), so an idle poll is one request.
- Polite: requests at least 0.25 s apart (Last.fm asks for no more than 5 a second); error 29
  (rate limit), 11 and 16 (temporarily unavailable) fail the run as transient; error 10 or 26
  (the API key) and 6 (no such user) fail it with Last.fm's own one-line reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from jobs.playlist_updater.sources import Play, Reading, SourceContext
from jobs.playlist_updater.sources.formats import clean, mbid, parse_time
from jobs.playlist_updater.sources.http import Response, SourceUnavailable
from runner.context import JobOptions
from runner.errors import RunnerError, TransientError

API_URL = "https://ws.audioscrobbler.com/2.0/"
PAGE = 200
INTERVAL = 0.25
WHAT = "Last.fm"
METHODS = {
    "recent": "user.getrecenttracks",
    "loved": "user.getlovedtracks",
    "top": "user.gettoptracks",
}
ROOTS = {"recent": "recenttracks", "loved": "lovedtracks", "top": "toptracks"}
TRANSIENT_ERRORS = {8, 11, 16, 29}


class Options(JobOptions):
    """A Last.fm user's tracks.

    Attributes:
        user: the Last.fm user name.
        api_key: a Last.fm API key (last.fm/api/account/create).
        kind: `recent`, `loved` or `top`.
        limit: how many tracks at most.
        period: for `top`: overall, 7day, 1month, 3month, 6month or 12month.
        api_url: the API root (tests point it at a fake).
    """

    user: str = Field(min_length=1, max_length=64)
    api_key: SecretStr = Field(min_length=1)
    kind: Literal["recent", "loved", "top"] = "recent"
    limit: int = Field(default=50, ge=1, le=1000)
    period: Literal["overall", "7day", "1month", "3month", "6month", "12month"] = "7day"
    api_url: str = Field(default=API_URL, pattern=r"^https?://\S+$")


def _error(response: Response, data: Any, user: str) -> Exception:
    code = data.get("error") if isinstance(data, dict) else None
    said = clean(str(data.get("message") or ""))[:120] if isinstance(data, dict) else ""
    if not isinstance(code, int):
        if response.status >= 400:
            return RunnerError(
                f"{WHAT} answered HTTP {response.status}; the playlist was left alone"
            )
        return TransientError(f"{WHAT} answered JSON without tracks; retrying later")
    reason = f"error {code}: {said}" if said else f"error {code}"
    if code == 29:
        return SourceUnavailable(f"{WHAT} rate-limited this address ({reason}); retrying later")
    if code in TRANSIENT_ERRORS:
        return TransientError(f"{WHAT} is unavailable for now ({reason}); retrying later")
    if code in (4, 10, 26):
        return RunnerError(f"{WHAT} refused the API key ({reason}): check lastfm.api_key")
    return RunnerError(f"{WHAT} user {user!r}: {reason}")


def _page(src: SourceContext, options: Options, params: dict[str, Any]) -> dict[str, Any]:
    response = src.http.get(
        options.api_url,
        what=WHAT,
        params={**params, "api_key": options.api_key.get_secret_value(), "format": "json"},
        accept=("json",),
        raise_for_status=False,
    )
    src.http.pace(options.api_url, INTERVAL)  # the next request waits out the rest
    data = response.json() if "json" in response.content_type or response.status < 400 else None
    root = data.get(ROOTS[options.kind]) if isinstance(data, dict) else None
    if response.status >= 400 or not isinstance(root, dict):
        raise _error(response, data, options.user)
    return root


def _listed(root: dict[str, Any]) -> list[Any]:
    tracks = root.get("track") or []
    return [tracks] if isinstance(tracks, dict) else list(tracks)  # one track: an object


def _play(track: Any) -> Play | None:
    if not isinstance(track, dict):
        return None
    if str((track.get("@attr") or {}).get("nowplaying", "")).lower() == "true":
        return None  # playing now: a scrobble once it has been listened to
    artist = track.get("artist")
    name = artist.get("name") or artist.get("#text") if isinstance(artist, dict) else artist
    title = clean(str(track.get("name") or ""))
    artist_name = clean(str(name or ""))
    if not (artist_name and title):
        return None
    date = track.get("date")
    uts = date.get("uts") if isinstance(date, dict) else None
    return Play(
        artist=artist_name,
        title=title,
        mbid=mbid(track.get("mbid")),
        played_at=parse_time(uts),
        id=str(uts) if uts else None,
    )


def read(src: SourceContext, options: Options) -> Reading:
    """The user's tracks of the kind asked for, newest (or best) first."""
    params: dict[str, Any] = {"method": METHODS[options.kind], "user": options.user}
    if options.kind == "top":
        params["period"] = options.period
    if options.kind == "recent" and src.mode == "append" and src.since is not None:
        params["from"] = int(src.since.timestamp())
    plays: list[Play] = []
    page = 1
    size = min(PAGE, options.limit)  # the same on every page: `page` counts in `limit`s
    while True:
        root = _page(src, options, {**params, "limit": size, "page": page})
        listed = _listed(root)
        plays.extend(play for play in map(_play, listed) if play is not None)
        attr = root.get("@attr") or {}
        try:
            pages = int(attr.get("totalPages") or 1)
        except (TypeError, ValueError):
            pages = 1
        if page >= pages or len(plays) >= options.limit or not listed:
            break
        page += 1
    return Reading(plays[: options.limit], newest_first=options.kind != "top")
