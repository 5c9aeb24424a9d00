"""The sources' HTTP: bounded, polite, one-line errors (real HTTP against local services)."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import formatdate

import pytest

from jobs.playlist_updater.sources.http import (
    LONGEST_HOLD,
    USER_AGENT,
    Http,
    SourceUnavailable,
    parse_retry_after,
)
from runner.errors import RunnerError, TransientError
from runner.testing.service import Answer, FeedServer, Request, Service


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


class Sleeps:
    """A sleep that only records (and a clock it moves)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("inf", LONGEST_HOLD),
        ("99999999999999", LONGEST_HOLD),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
        (formatdate(1_000_090, usegmt=True), 90.0),
    ],
)
def test_retry_after_seconds_or_http_date_capped_at_a_day(
    header: str | None, expected: float | None
) -> None:
    assert parse_retry_after(header, now=lambda: 1_000_000.0) == expected


def test_user_agent_and_gzip_are_asked_for(feeds: FeedServer) -> None:
    feeds.serve("/x", "hello", gzip_body=True)
    http = Http()
    response = http.get(feeds.url("/x"), what="feed")
    assert response.text() == "hello"
    assert feeds.requests[0].headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("spotify-runner/")
    assert "gzip" in feeds.requests[0].headers["Accept-Encoding"]
    assert http.sent == 1


def test_a_short_retry_after_is_waited_once_a_long_one_is_not(feeds: FeedServer) -> None:
    feeds.serve("/x", "ok")
    sleeps = Sleeps()
    http = Http(clock=sleeps.clock, sleep=sleeps.sleep)
    feeds.fail(503, retry_after="2")
    assert http.get(feeds.url("/x"), what="feed").text() == "ok"
    assert sleeps.slept == [2.0]
    feeds.fail(429, retry_after="600")
    with pytest.raises(SourceUnavailable) as caught:
        http.get(feeds.url("/x"), what="feed")
    assert caught.value.retry_after == 600.0
    assert sleeps.slept == [2.0]  # never slept for the long one
    feeds.fail(503, retry_after="1", times=2)
    with pytest.raises(SourceUnavailable):
        http.get(feeds.url("/x"), what="feed")  # waited once; the second 503 ends it


def test_rate_limit_headers_space_the_next_request(feeds: FeedServer) -> None:
    class Limited(Service):
        def route(self, request: Request) -> Answer:
            return Answer.json(
                {}, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-In": "3"}
            )

    sleeps = Sleeps()
    http = Http(clock=sleeps.clock, sleep=sleeps.sleep)
    with Limited() as service:
        http.get(service.url("/a"), what="service")
        http.get(service.url("/b"), what="service")
        assert sleeps.slept == [3.0]
        limited = Http(clock=sleeps.clock, sleep=sleeps.sleep)
        limited.get(service.url("/a"), what="service")
        limited.pace(service.url("/"), 60.0)
        with pytest.raises(SourceUnavailable) as caught:
            limited.get(service.url("/b"), what="service")
    assert caught.value.retry_after == pytest.approx(60.0)


def test_redirect_loop_is_capped() -> None:
    class Loop(Service):
        def route(self, request: Request) -> Answer:
            return Answer(302, b"", "text/plain", {"Location": request.path + "x"})

    with Loop() as service, pytest.raises(RunnerError) as caught:
        Http().get(service.url("/r"), what="feed x")
    assert str(caught.value) == "feed x redirected more than 5 times"


def test_content_type_is_checked_and_the_body_never_becomes_the_message(
    feeds: FeedServer,
) -> None:
    feeds.serve("/page", "<html><body><h1>Oops</h1>\n<p>maintenance</p></body></html>", "text/html")
    with pytest.raises(TransientError) as caught:
        Http().get(feeds.url("/page"), what="feed y", accept=("json",))
    assert str(caught.value) == "feed y answered text/html, not json; retrying later"
    with pytest.raises(RunnerError) as missing:
        Http().get(feeds.url("/nothing"), what="feed y")
    assert "<" not in str(missing.value)
    assert "\n" not in str(missing.value)


def test_declared_length_over_the_cap_is_refused_before_reading(feeds: FeedServer) -> None:
    feeds.serve("/big", b"x" * 5000)
    with pytest.raises(RunnerError) as caught:
        Http(max_bytes=4096).get(feeds.url("/big"), what="feed z")
    assert str(caught.value) == "feed z is 5000 bytes, over the 4096 bytes cap"


def test_no_request_starts_past_the_deadline(feeds: FeedServer) -> None:
    feeds.serve("/x", "ok")
    with pytest.raises(TransientError) as caught:
        Http(remaining=lambda: 0.1).get(feeds.url("/x"), what="feed")
    assert "time is up" in str(caught.value)
    assert feeds.requests == []


def test_an_unreachable_host_is_transient_and_names_no_query() -> None:
    with pytest.raises(TransientError) as caught:
        Http(timeout=(1.0, 1.0)).get("http://127.0.0.1:9/feed?key=sekrit", what="feed q")
    assert str(caught.value).startswith("feed q could not be fetched (")
    assert "sekrit" not in str(caught.value)
