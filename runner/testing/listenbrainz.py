"""An embedded fake of the ListenBrainz API's listens and user statistics, as documented.

- `GET /1/user/{user}/listens?count=&min_ts=&max_ts=`: listens newest first, `count` 25 by default
  and at most 1000; `min_ts` gives the listens just after it (the oldest `count` of them, still
  listed newest first), `max_ts` those just before it; both together is a 400
  ("You may only specify max_ts or min_ts, not both."). The payload is
  `{count, latest_listen_ts, oldest_listen_ts, user_id, listens: [...]}`; each listen has
  `listened_at`, `inserted_at`, `recording_msid`, `user_name` and `track_metadata` with
  `artist_name`, `track_name`, `release_name`, `additional_info` (`isrc`, `spotify_id`,
  `recording_mbid`, ...) and `mbid_mapping`.
- `GET /1/stats/user/{user}/recordings?range=&count=&offset=`: `{payload: {recordings: [...]}}`,
  or 204 while statistics are not calculated.
- Rate limiting like ListenBrainz: every answer carries `X-RateLimit-Limit`,
  `X-RateLimit-Remaining`, `X-RateLimit-Reset-In` and `X-RateLimit-Reset`; past the limit in one
  window, 429.
- An unknown user is a 404 `{"code": 404, "error": "Cannot find user: NAME"}`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from runner.testing.service import Answer, Request, Service

MAX_ITEMS_PER_GET = 1000
DEFAULT_ITEMS_PER_GET = 25
RANGES = (
    "this_week",
    "this_month",
    "this_year",
    "week",
    "month",
    "quarter",
    "year",
    "half_yearly",
    "all_time",
)


@dataclass
class _User:
    listens: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class FakeListenBrainz(Service):
    """ListenBrainz users with listens and statistics.

    Args:
        limit: requests allowed per rate-limit window.
        window: the window's length in seconds.
    """

    def __init__(self, *, limit: int = 30, window: float = 10.0) -> None:
        super().__init__()
        self.users: dict[str, _User] = {}
        self.limit, self.window = limit, window
        self._window_start = time.monotonic()
        self._used = 0
        self._clock = 1_764_619_200  # 2025-12-01T20:00:00Z

    @property
    def api_url(self) -> str:
        """The API root to configure as `api_url`."""
        return self.base_url

    def listen(
        self,
        user: str,
        artist: str,
        title: str,
        *,
        isrc: str | None = None,
        spotify_id: str | None = None,
        recording_mbid: str | None = None,
        at: int | None = None,
    ) -> dict[str, Any]:
        """Adds a listen (a minute after the previous one unless `at` says)."""
        with self._lock:
            self._clock = at if at is not None else self._clock + 60
            info: dict[str, Any] = {"submission_client": "fake", "duration_ms": 200000}
            if isrc:
                info["isrc"] = isrc
            if spotify_id:
                info["spotify_id"] = spotify_id
            if recording_mbid:
                info["recording_mbid"] = recording_mbid
            entry = {
                "inserted_at": self._clock + 2,
                "listened_at": self._clock,
                "recording_msid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{artist}/{title}")),
                "user_name": user,
                "track_metadata": {
                    "artist_name": artist,
                    "track_name": title,
                    "release_name": None,
                    "additional_info": info,
                    "mbid_mapping": (
                        {"recording_mbid": recording_mbid, "artist_mbids": []}
                        if recording_mbid
                        else None
                    ),
                },
            }
            self.users.setdefault(user, _User()).listens.append(entry)
            return entry

    def set_top(self, user: str, range_: str, recordings: list[tuple[str, str]]) -> None:
        """The user's top recordings over a range, best first."""
        with self._lock:
            self.users.setdefault(user, _User()).stats[range_] = [
                {
                    "artist_name": artist,
                    "track_name": title,
                    "listen_count": 50 - rank,
                    "recording_mbid": None,
                    "release_name": None,
                    "artist_mbids": [],
                }
                for rank, (artist, title) in enumerate(recordings)
            ]

    # -- serving --------------------------------------------------------------------------------

    def _rate(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window:
                self._window_start, self._used = now, 0
            self._used += 1
            over = self._used > self.limit
            reset_in = max(0.0, self.window - (now - self._window_start))
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(0, self.limit - self._used)),
                "X-RateLimit-Reset-In": str(int(reset_in + 0.999)),
                "X-RateLimit-Reset": str(int(time.time() + reset_in)),
            }
            return over, headers

    def route(self, request: Request) -> Answer:
        """Listens and recording statistics."""
        over, headers = self._rate()
        if over:
            return Answer.json(
                {"code": 429, "error": "Too many requests. Please wait a moment and try again."},
                status=429,
                headers=headers,
            )
        parts = request.path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["1", "user"] and parts[3] == "listens":
            answer = self._listens(parts[2], request.query)
        elif len(parts) == 5 and parts[:3] == ["1", "stats", "user"] and parts[4] == "recordings":
            answer = self._stats(parts[3], request.query)
        else:
            answer = Answer.json({"code": 404, "error": "Not found"}, status=404)
        answer.headers.update(headers)
        return answer

    def _listens(self, name: str, query: dict[str, str] | Any) -> Answer:
        if "min_ts" in query and "max_ts" in query:
            return Answer.json(
                {"code": 400, "error": "You may only specify max_ts or min_ts, not both."},
                status=400,
            )
        with self._lock:
            user = self.users.get(name)
            if user is None:
                return Answer.json({"code": 404, "error": f"Cannot find user: {name}"}, status=404)
            try:
                count = min(int(query.get("count", DEFAULT_ITEMS_PER_GET)), MAX_ITEMS_PER_GET)
                low = int(query["min_ts"]) if "min_ts" in query else None
                high = int(query["max_ts"]) if "max_ts" in query else None
            except ValueError:
                return Answer.json({"code": 400, "error": "Invalid parameter"}, status=400)
            listens = sorted(user.listens, key=lambda item: item["listened_at"])
        if low is not None:
            chosen = [item for item in listens if item["listened_at"] > low][:count]
        else:
            if high is not None:
                listens = [item for item in listens if item["listened_at"] < high]
            chosen = listens[-count:] if count > 0 else []
        chosen = list(reversed(chosen))
        stamps = [item["listened_at"] for item in listens] or [0]
        payload = {
            "count": len(chosen),
            "latest_listen_ts": max(stamps),
            "oldest_listen_ts": min(stamps),
            "user_id": name,
            "listens": chosen,
        }
        return Answer.json({"payload": payload})

    def _stats(self, name: str, query: dict[str, str] | Any) -> Answer:
        range_ = query.get("range", "all_time")
        if range_ not in RANGES:
            return Answer.json({"code": 400, "error": f"Invalid range: {range_}"}, status=400)
        with self._lock:
            user = self.users.get(name)
            if user is None:
                return Answer.json({"code": 404, "error": f"Cannot find user: {name}"}, status=404)
            recordings = user.stats.get(range_)
        if recordings is None:
            return Answer(204, b"", "application/json")
        count = min(int(query.get("count", DEFAULT_ITEMS_PER_GET)), 100)
        offset = int(query.get("offset", 0))
        payload = {
            "recordings": recordings[offset : offset + count],
            "count": min(count, max(0, len(recordings) - offset)),
            "total_recording_count": len(recordings),
            "offset": offset,
            "range": range_,
            "user_id": name,
            "from_ts": 0,
            "to_ts": 0,
            "last_updated": 0,
        }
        return Answer.json({"payload": payload})
