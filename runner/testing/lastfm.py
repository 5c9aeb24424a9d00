"""An embedded fake of the Last.fm API 2.0 user methods, as documented (last.fm/api).

`GET /2.0/?method=user.getrecenttracks|user.getlovedtracks|user.gettoptracks&user=NAME
&api_key=KEY&format=json`, with `limit` (50 by default, at most 200) and `page`; recent tracks
take `from`/`to` (Unix seconds) and list the track playing now first, marked
`"@attr": {"nowplaying": "true"}` and without a date. Numbers come as strings and a page of one
track holds an object instead of a list, as Last.fm's JSON does. Errors are Last.fm's
`{"error": N, "message": ...}`: 10 (invalid API key, HTTP 403), 6 (user not found, 404),
3 (invalid method, 400), and 29 (rate limit exceeded, HTTP 429) when more than
`requests_per_second` requests arrive within one second.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from runner.testing.service import Answer, Request, Service

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
PERIODS = ("overall", "7day", "1month", "3month", "6month", "12month")


@dataclass
class _User:
    scrobbles: list[dict[str, Any]] = field(default_factory=list)
    loved: list[dict[str, Any]] = field(default_factory=list)
    top: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    now_playing: dict[str, Any] | None = None


class FakeLastfm(Service):
    """Last.fm users with scrobbles, loved tracks and top tracks."""

    API_KEY = "0123456789abcdef0123456789abcdef"

    def __init__(self, *, requests_per_second: float = 5.0) -> None:
        super().__init__()
        self.users: dict[str, _User] = {}
        self.requests_per_second = requests_per_second
        self._recent: deque[float] = deque()
        self._rate_lock = threading.Lock()
        self._clock = 1_764_619_200  # 2025-12-01T20:00:00Z

    @property
    def api_url(self) -> str:
        """The API root to configure as `api_url`."""
        return self.base_url + "/2.0/"

    def _user(self, name: str) -> _User:
        return self.users.setdefault(name.lower(), _User())

    @staticmethod
    def _track(artist: str, title: str, mbid: str = "") -> dict[str, Any]:
        return {
            "artist": {"mbid": "", "#text": artist},
            "streamable": "0",
            "image": [{"size": "small", "#text": ""}],
            "mbid": mbid,
            "album": {"mbid": "", "#text": ""},
            "name": title,
            "url": "https://www.last.fm/music/"
            + f"{artist.replace(' ', '+')}/_/{title.replace(' ', '+')}",
        }

    def scrobble(
        self, user: str, artist: str, title: str, *, mbid: str = "", at: int | None = None
    ) -> None:
        """Adds a scrobble (a minute after the previous one unless `at` says)."""
        with self._lock:
            self._clock = at if at is not None else self._clock + 60
            entry = self._track(artist, title, mbid)
            entry["date"] = {
                "uts": str(self._clock),
                "#text": time.strftime("%d %b %Y, %H:%M", time.gmtime(self._clock)),
            }
            self._user(user).scrobbles.append(entry)

    def play_now(self, user: str, artist: str, title: str) -> None:
        """Marks a track as playing now (it is listed first, without a date)."""
        with self._lock:
            entry = self._track(artist, title)
            entry["@attr"] = {"nowplaying": "true"}
            self._user(user).now_playing = entry

    def love(self, user: str, artist: str, title: str, *, mbid: str = "") -> None:
        """Adds a loved track (now)."""
        with self._lock:
            self._clock += 60
            entry = {
                "name": title,
                "mbid": mbid,
                "url": "",
                "date": {"uts": str(self._clock), "#text": ""},
                "artist": {"name": artist, "mbid": "", "url": ""},
                "image": [],
                "streamable": {"fulltrack": "0", "#text": "0"},
            }
            self._user(user).loved.append(entry)

    def set_top(self, user: str, period: str, tracks: list[tuple[str, str]]) -> None:
        """The user's top tracks over a period, best first."""
        with self._lock:
            self._user(user).top[period] = [
                {
                    "name": title,
                    "playcount": str(100 - rank),
                    "mbid": "",
                    "url": "",
                    "artist": {"name": artist, "mbid": "", "url": ""},
                    "@attr": {"rank": str(rank + 1)},
                    "duration": "200",
                }
                for rank, (artist, title) in enumerate(tracks)
            ]

    # -- serving --------------------------------------------------------------------------------

    def _limited(self) -> bool:
        now = time.monotonic()
        with self._rate_lock:
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            self._recent.append(now)
            return len(self._recent) > self.requests_per_second

    @staticmethod
    def _error(code: int, message: str, status: int) -> Answer:
        return Answer.json({"error": code, "message": message}, status=status)

    def route(self, request: Request) -> Answer:
        """The `user.*` methods this project reads."""
        if request.path.rstrip("/") != "/2.0":
            return Answer(404, b"<html><body>Not found</body></html>", "text/html")
        if self._limited():
            return self._error(29, "Rate Limit Exceeded", 429)
        query = request.query
        if query.get("api_key") != self.API_KEY:
            return self._error(
                10, "Invalid API key - You must be granted a valid key by last.fm", 403
            )
        method = query.get("method", "").lower()
        kinds = {
            "user.getrecenttracks": "recenttracks",
            "user.getlovedtracks": "lovedtracks",
            "user.gettoptracks": "toptracks",
        }
        if method not in kinds:
            return self._error(3, "Invalid Method - No method with that name in this package", 400)
        name = query.get("user", "")
        with self._lock:
            user = self.users.get(name.lower())
            if user is None:
                return self._error(6, "User not found", 404)
            try:
                limit = min(max(int(query.get("limit", DEFAULT_LIMIT)), 1), MAX_LIMIT)
                page = max(int(query.get("page", 1)), 1)
            except ValueError:
                return self._error(6, "Invalid parameters", 400)
            if method == "user.getrecenttracks":
                tracks = list(reversed(user.scrobbles))
                low, high = int(query.get("from", 0) or 0), int(query.get("to", 0) or 0)
                tracks = [t for t in tracks if int(t["date"]["uts"]) > low or not low]
                tracks = [t for t in tracks if not high or int(t["date"]["uts"]) < high]
                playing = user.now_playing
            elif method == "user.getlovedtracks":
                tracks, playing = list(reversed(user.loved)), None
            else:
                period = query.get("period", "overall")
                if period not in PERIODS:
                    return self._error(6, "Invalid period", 400)
                tracks, playing = list(user.top.get(period, [])), None
        total = len(tracks)
        listed = tracks[(page - 1) * limit : page * limit]
        if playing is not None and page == 1:
            listed = [playing, *listed]
        attr = {
            "user": name,
            "totalPages": str(max(1, math.ceil(total / limit))),
            "page": str(page),
            "perPage": str(limit),
            "total": str(total),
        }
        body: Any = listed[0] if len(listed) == 1 else listed  # Last.fm's one-track quirk
        return Answer.json({kinds[method]: {"track": body, "@attr": attr}})
