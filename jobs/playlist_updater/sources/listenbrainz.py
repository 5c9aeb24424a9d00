"""`listenbrainz: {user: NAME, kind: listens, limit: 100}`: a ListenBrainz user's listens or top.

`kind` is `listens` (`GET /1/user/{user}/listens`) or `top` (`GET /1/stats/user/{user}/recordings`
over `range`: this_week, this_month, this_year, week, month, quarter, year, half_yearly,
all_time). Public data needs no token; `token` (a user token) is sent as `Authorization: Token`.

- Listens often carry exact identifiers in `track_metadata.additional_info` (`spotify_id`,
  `isrc`, `recording_mbid`) or `mbid_mapping.recording_mbid`: they are matched by those first.
- In `append` mode only listens after the newest one taken are asked for (`min_ts`; never
  together with `max_ts`, which ListenBrainz refuses), paged forward by the newest time read.
- Polite: the `X-RateLimit-Remaining` / `X-RateLimit-Reset-In` headers are honoured (the next
  request waits for the window when none are left, or the run ends as transient when that is
  long); a 429 fails the run as transient with the reset time as its Retry-After.
- Statistics not calculated yet (204) give no tracks: in `replace` mode the playlist keeps what
  this source gave last time.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from jobs.playlist_updater.sources import Play, Reading, SourceContext
from jobs.playlist_updater.sources.formats import clean, isrc, mbid, parse_time, spotify_uri
from jobs.playlist_updater.sources.http import Response
from runner.context import JobOptions
from runner.errors import RunnerError, TransientError

API_URL = "https://api.listenbrainz.org"
MAX_LISTENS = 1000
"""ListenBrainz's largest `count` for listens (MAX_ITEMS_PER_GET)."""
MAX_STATS = 100
WHAT = "ListenBrainz"


class Options(JobOptions):
    """A ListenBrainz user's listens or top recordings.

    Attributes:
        user: the ListenBrainz user name.
        kind: `listens` or `top`.
        limit: how many at most.
        count: listens asked for per request (ListenBrainz allows up to 1000).
        range: for `top`: which statistics.
        token: a user token, only for data that is not public.
        api_url: the API root (tests point it at a fake).
    """

    user: str = Field(min_length=1, max_length=64)
    kind: Literal["listens", "top"] = "listens"
    limit: int = Field(default=100, ge=1, le=1000)
    count: int = Field(default=MAX_LISTENS, ge=1, le=MAX_LISTENS)
    range: Literal[
        "this_week",
        "this_month",
        "this_year",
        "week",
        "month",
        "quarter",
        "year",
        "half_yearly",
        "all_time",
    ] = "week"
    token: SecretStr | None = None
    api_url: str = Field(default=API_URL, pattern=r"^https?://\S+$")


def _get(src: SourceContext, options: Options, path: str, params: dict[str, Any]) -> Response:
    headers = (
        {"Authorization": f"Token {options.token.get_secret_value()}"} if options.token else {}
    )
    response = src.http.get(
        options.api_url.rstrip("/") + path,
        what=WHAT,
        params=params,
        headers=headers,
        accept=("json",),
        raise_for_status=False,
    )
    if response.status >= 400:
        said = ""
        if "json" in response.content_type:
            data = response.json()
            if isinstance(data, dict):
                said = clean(str(data.get("error") or ""))[:120]
        detail = f": {said}" if said else ""
        if response.status in (401, 403):
            raise RunnerError(f"{WHAT} refused the token (HTTP {response.status}){detail}")
        if response.status == 404:
            raise RunnerError(f"{WHAT} user {options.user!r} not found (HTTP 404){detail}")
        raise RunnerError(f"{WHAT} answered HTTP {response.status}{detail}")
    return response


def _listen(listen: Any) -> Play | None:
    if not isinstance(listen, dict):
        return None
    meta = listen.get("track_metadata") or {}
    info = meta.get("additional_info") or {}
    mapping = meta.get("mbid_mapping") or {}
    artist = clean(str(meta.get("artist_name") or ""))
    title = clean(str(meta.get("track_name") or ""))
    uri = spotify_uri(info.get("spotify_id")) or spotify_uri(info.get("origin_url"))
    code = isrc(info.get("isrc"))
    if not (artist and title) and uri is None and code is None:
        return None
    listened = listen.get("listened_at")
    return Play(
        artist=artist,
        title=title,
        uri=uri,
        isrc=code,
        mbid=mbid(mapping.get("recording_mbid")) or mbid(info.get("recording_mbid")),
        played_at=parse_time(listened),
        id=f"{listened}:{listen.get('recording_msid') or ''}",
    )


def _listens(src: SourceContext, options: Options) -> Reading:
    path = f"/1/user/{quote(options.user, safe='')}/listens"
    since = src.since if src.mode == "append" else None
    if since is None:
        count = min(options.limit, options.count)
        data = _get(src, options, path, {"count": count}).json()
        listens = _payload(data).get("listens") or []
        return Reading([p for p in map(_listen, listens) if p is not None], newest_first=True)
    # Forward from the newest listen taken: min_ts only (never with max_ts).
    plays: list[Play] = []
    min_ts = int(since.timestamp())
    while len(plays) < options.limit:
        count = min(options.limit - len(plays), options.count)
        data = _get(src, options, path, {"count": count, "min_ts": min_ts}).json()
        listens = [item for item in _payload(data).get("listens") or [] if isinstance(item, dict)]
        plays.extend(p for p in map(_listen, listens) if p is not None)
        stamps = [int(t) for item in listens if isinstance(t := item.get("listened_at"), int)]
        if len(listens) < count or not stamps or max(stamps) <= min_ts:
            break
        min_ts = max(stamps)
    plays.sort(key=lambda play: play.played_at or since, reverse=True)
    return Reading(plays, newest_first=True)


def _payload(data: Any) -> dict[str, Any]:
    payload = data.get("payload") if isinstance(data, dict) else None
    if not isinstance(payload, dict):
        raise TransientError(f"{WHAT} answered JSON without a payload; retrying later")
    return payload


def _top(src: SourceContext, options: Options) -> Reading:
    path = f"/1/stats/user/{quote(options.user, safe='')}/recordings"
    plays: list[Play] = []
    offset = 0
    while len(plays) < options.limit:
        count = min(options.limit - len(plays), MAX_STATS)
        response = _get(
            src, options, path, {"range": options.range, "count": count, "offset": offset}
        )
        if response.status == 204:
            break  # statistics not calculated yet
        recordings = _payload(response.json()).get("recordings") or []
        for item in recordings:
            if isinstance(item, dict):
                artist = clean(str(item.get("artist_name") or ""))
                title = clean(str(item.get("track_name") or ""))
                if artist and title:
                    plays.append(
                        Play(artist=artist, title=title, mbid=mbid(item.get("recording_mbid")))
                    )
        if len(recordings) < count:
            break
        offset += count
    return Reading(plays)


def read(src: SourceContext, options: Options) -> Reading:
    """The user's listens (newest first) or top recordings (best first)."""
    return _listens(src, options) if options.kind == "listens" else _top(src, options)
