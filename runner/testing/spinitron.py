"""An embedded fake of the Spinitron v2 API's spins, as documented (spinitron.com/api).

`GET /api/spins` with the station key as `Authorization: Bearer KEY` (or `?access-token=KEY`):
spins newest first, `count` per page (20 by default, at most 200), `page` from 1, optional
`start`/`end` datetime filters (a spin at `start` is included), and Spinitron's envelope
`{items, _links: {self, next}, _meta: {totalCount, pageCount, currentPage, perPage}}`. Each spin
carries the documented fields (`id`, `playlist_id`, `start`, `end`, `duration`, `timezone`,
`artist`, `song`, `release`, `label`, `isrc`, ...; times as `2018-03-30T13:07:08+0000`). A
missing or wrong key answers 401 with Spinitron's error object; a bad datetime 422.

Example:
    >>> with FakeSpinitron() as station:  # doctest: +SKIP
    ...     station.add_spin("Dr. John", "Iko Iko", isrc="USAT20001234")
    ...     options = {"api_key": station.API_KEY, "api_url": station.api_url}
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from runner.testing.service import Answer, Request, Service

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
MAX_COUNT = 200
DEFAULT_COUNT = 20


def _parse(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class FakeSpinitron(Service):
    """A station with a spin log, answering like Spinitron's API v2."""

    API_KEY = "fake-spinitron-station-key"

    def __init__(self, *, start: datetime | None = None, timezone: str = "America/Chicago") -> None:
        super().__init__()
        self.spins: list[dict[str, Any]] = []
        self.timezone = timezone
        self._clock = start or datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
        self._next_id = 8_017_277

    @property
    def api_url(self) -> str:
        """The API root to configure as `api_url`."""
        return self.base_url + "/api"

    def add_spin(
        self,
        artist: str,
        song: str,
        *,
        isrc: str | None = None,
        release: str = "",
        duration: int = 180,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Logs a spin (at the end of the previous one unless `at` says); returns it."""
        with self._lock:
            begin = at or self._clock
            end = begin + timedelta(seconds=duration)
            self._clock = max(self._clock, end)
            self._next_id += 1
            spin = {
                "id": self._next_id,
                "playlist_id": 336722,
                "start": begin.astimezone(UTC).strftime(TIME_FORMAT),
                "end": end.astimezone(UTC).strftime(TIME_FORMAT),
                "duration": duration,
                "timezone": self.timezone,
                "image": None,
                "classical": False,
                "artist": artist,
                "artist-custom": None,
                "composer": None,
                "release": release or None,
                "release-custom": None,
                "va": False,
                "label": None,
                "label-custom": None,
                "released": None,
                "medium": None,
                "genre": None,
                "isrc": isrc,
                "iswc": None,
                "upc": None,
                "song": song,
                "note": None,
                "request": False,
                "local": False,
                "new": False,
                "_links": {
                    "self": {"href": f"{self.api_url}/spins/{self._next_id}"},
                    "playlist": {"href": f"{self.api_url}/playlists/336722"},
                },
            }
            self.spins.append(spin)
            return spin

    def route(self, request: Request) -> Answer:
        """`GET /api/spins` and `GET /api/spins/{id}`."""
        if not request.path.startswith("/api/spins"):
            return self._error(404, "Not Found", "Page not found.")
        key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if key != self.API_KEY and request.query.get("access-token") != self.API_KEY:
            return self._error(
                401, "Unauthorized", "Your request was made with invalid credentials."
            )
        if request.path.rstrip("/") != "/api/spins":
            wanted = request.path.rsplit("/", 1)[-1]
            with self._lock:
                found = [s for s in self.spins if str(s["id"]) == wanted]
            return (
                Answer.json(found[0]) if found else self._error(404, "Not Found", "Spin not found")
            )
        return self._index(request)

    def _index(self, request: Request) -> Answer:
        query = dict(request.query)
        try:
            count = min(max(int(query.get("count", DEFAULT_COUNT)), 1), MAX_COUNT)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            return self._invalid("count", "Count must be an integer.")
        bounds: dict[str, datetime] = {}
        for name in ("start", "end"):
            if name in query:
                parsed = _parse(query[name])
                if parsed is None:
                    return self._invalid(name, f"The format of {name.title()} is invalid.")
                bounds[name] = parsed
        with self._lock:
            spins = list(reversed(self.spins))  # newest first
        if "start" in bounds:
            spins = [s for s in spins if _parse(s["start"]) >= bounds["start"]]  # type: ignore[operator]
        if "end" in bounds:
            spins = [s for s in spins if _parse(s["start"]) <= bounds["end"]]  # type: ignore[operator]
        total = len(spins)
        pages = max(1, math.ceil(total / count))
        items = spins[(page - 1) * count : page * count]

        def link(number: int) -> dict[str, str]:
            return {"href": f"{self.api_url}/spins?{urlencode({**query, 'page': number})}"}

        links = {"self": link(page)}
        if page < pages:
            links["next"] = link(page + 1)
            links["last"] = link(pages)
        meta = {"totalCount": total, "pageCount": pages, "currentPage": page, "perPage": count}
        return Answer.json({"items": items, "_links": links, "_meta": meta})

    @staticmethod
    def _error(status: int, name: str, message: str) -> Answer:
        return Answer.json(
            {"name": name, "message": message, "code": 0, "status": status}, status=status
        )

    @staticmethod
    def _invalid(field: str, message: str) -> Answer:
        return Answer.json([{"field": field, "message": message}], status=422)
