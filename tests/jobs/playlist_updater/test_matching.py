"""Matching "Artist - Title" lines: the right track, or none rather than a wrong one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.playlist_updater import matching
from jobs.playlist_updater.matching import (
    VERSION_MISMATCH,
    MatchMemory,
    best_match,
    best_rejected,
    normalise_artist,
    normalise_title,
    parse_line,
    rank,
    score,
    search_queries,
    split_artists,
)
from jobs.playlist_updater.target import Candidate
from runner.state import RunStatus
from runner.testing import FakeSpotify
from runner.testing.harness import JobHarness


def track(uri: str, name: str, *artists: str) -> Candidate:
    return Candidate(f"spotify:track:{uri}", name=name, artists=artists)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hey Jude - Remastered 2015", "hey jude"),
        ("Hey Jude (Remastered 2011)", "hey jude"),
        ("Don't Stop Me Now - Live at Wembley '86", "dont stop me now"),
        ("Blinding Lights [Explicit]", "blinding lights"),
        ("One Kiss (feat. Dua Lipa) - Radio Edit", "one kiss"),
        ("One Kiss feat. Dua Lipa", "one kiss"),
        ("Crazy In Love (ft. JAY-Z)", "crazy in love"),
        ("Paint It Black - Mono", "paint it black"),
        ("(I Can't Get No) Satisfaction - Mono Version", "i cant get no satisfaction"),
        ("Hoppípolla", "hoppipolla"),
        ("Rock & Roll", "rock and roll"),
        ("  Sweet   Child O' Mine ", "sweet child o mine"),
        ("Live Forever - Remastered", "live forever"),
        ('Skyfall - From "Skyfall"', "skyfall"),
        ("Song - Part 2", "song part 2"),  # a dashed part that is not a version note stays
    ],
)
def test_normalise_title(raw: str, expected: str) -> None:
    assert normalise_title(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Beatles", "beatles"),
        ("Beatles, The", "beatles"),
        ("Beyoncé", "beyonce"),
        ("Simon & Garfunkel", "simon and garfunkel"),
        ("Calvin Harris feat. Dua Lipa", "calvin harris"),
        ("Guns N' Roses", "guns and roses"),  # "n" is "and", as in "Rock 'n' Roll"
        ("AC/DC", "ac dc"),
    ],
)
def test_normalise_artist(raw: str, expected: str) -> None:
    assert normalise_artist(raw) == expected


def test_split_artists() -> None:
    assert split_artists("Beyoncé feat. JAY-Z & Kendrick Lamar") == [
        "beyonce",
        "jay z",
        "kendrick lamar",
    ]
    assert split_artists("David Guetta x Sia") == ["david guetta", "sia"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Queen - Bohemian Rhapsody", ("Queen", "Bohemian Rhapsody")),
        ("Sigur Rós – Hoppípolla", ("Sigur Rós", "Hoppípolla")),
        ("Sigur Rós—Hoppípolla", ("Sigur Rós", "Hoppípolla")),
        ("Jay-Z - 99 Problems", ("Jay-Z", "99 Problems")),
        ('  Oasis - "Wonderwall"  ', ("Oasis", "Wonderwall")),
        ("Queen - Don't Stop Me Now - Live", ("Queen", "Don't Stop Me Now - Live")),
        ("Jay-Z", None),
        ("Artist -", None),
        ("- Title", None),
        ("", None),
        ("# a comment - not a song", None),
    ],
)
def test_parse_line(line: str, expected: tuple[str, str] | None) -> None:
    assert parse_line(line) == expected


def test_search_queries_filter_first_then_free_text() -> None:
    assert search_queries("Calvin Harris feat. Dua Lipa", 'One Kiss (Remastered) "x"') == [
        'track:"One Kiss x" artist:"Calvin Harris"',
        "Calvin Harris One Kiss x",
        'track:"one kiss x"',
    ]


def test_search_queries_ask_for_the_version_a_line_names_first() -> None:
    assert search_queries("Irma Thomas", "Ruler of My Heart (Live at Tipitina's 1989)") == [
        'track:"Ruler of My Heart" artist:"Irma Thomas" live',
        'track:"Ruler of My Heart" artist:"Irma Thomas"',
        "Irma Thomas Ruler of My Heart",
        'track:"ruler of my heart"',
    ]


def test_accents_do_not_matter() -> None:
    assert score("Beyonce", "Halo", "Halo", ["Beyoncé"]) == 1.0
    assert score("Sigur Ros", "Hoppipolla", "Hoppípolla", ["Sigur Rós"]) == 1.0


def test_the_and_ampersand_do_not_matter() -> None:
    assert score("Beatles", "Let It Be", "Let It Be - Remastered 2009", ["The Beatles"]) > 0.95
    assert score("Simon and Garfunkel", "The Boxer", "The Boxer", ["Simon & Garfunkel"]) == 1.0
    assert score("Beyoncé & Jay-Z", "Drunk in Love", "Drunk in Love", ["Beyoncé", "JAY-Z"]) == 1.0


def test_featured_artists_in_title_or_credit() -> None:
    candidate = track("1", "One Kiss (with Dua Lipa)", "Calvin Harris", "Dua Lipa")
    assert best_match("Calvin Harris feat. Dua Lipa", "One Kiss", [candidate]) == candidate
    assert best_match("Dua Lipa", "One Kiss", [candidate]) == candidate


def test_studio_version_beats_live_and_live_is_never_taken_for_it() -> None:
    live = track("live", "Don't Stop Me Now - Live at Wembley", "Queen")
    studio = track("studio", "Don't Stop Me Now - Remastered 2011", "Queen")
    assert best_match("Queen", "Don't Stop Me Now", [live, studio]) == studio
    assert best_match("Queen", "Don't Stop Me Now", [live]) is None


def test_live_line_prefers_the_live_version() -> None:
    live = track("live", "Don't Stop Me Now - Live at Wembley", "Queen")
    studio = track("studio", "Don't Stop Me Now", "Queen")
    assert best_match("Queen", "Don't Stop Me Now (Live)", [studio, live]) == live


def test_cover_by_another_artist_is_rejected() -> None:
    cover = track("cover", "Hallelujah", "Jeff Buckley")
    assert best_match("Leonard Cohen", "Hallelujah", [cover]) is None
    original = track("original", "Hallelujah", "Leonard Cohen")
    assert best_match("Leonard Cohen", "Hallelujah", [cover, original]) == original


def test_similar_artist_name_is_rejected() -> None:
    latifah = track("1", "Ladies First", "Queen Latifah")
    assert best_match("Queen", "Ladies First", [latifah]) is None


def test_wrong_song_by_right_artist_is_rejected() -> None:
    results = [
        track("1", "Bohemian Rhapsody", "Queen"),
        track("2", "Don't Stop Me Now", "Queen"),
    ]
    assert best_match("Queen", "Somebody to Love", results) is None


def test_remix_is_not_the_song() -> None:
    remix = track("1", "Blinding Lights - Chromatics Remix", "The Weeknd")
    assert best_match("The Weeknd", "Blinding Lights", [remix]) is None
    asked = best_match("The Weeknd", "Blinding Lights (Chromatics Remix)", [remix])
    assert asked == remix


def test_messy_radio_line_end_to_end() -> None:
    parsed = parse_line("BEYONCE FT. JAY Z – Crazy in Love [Explicit]")
    assert parsed is not None
    results = [
        track("cover", "Crazy in Love", "Sofia Karlberg"),
        track("right", "Crazy In Love (feat. Jay-Z)", "Beyoncé", "JAY-Z"),
        track("remix", "Crazy In Love - Remix", "Beyoncé"),
    ]
    assert best_match(*parsed, results) == results[1]


def test_rank_orders_by_score_and_keeps_spotify_order_on_ties() -> None:
    first = track("a", "Yesterday", "The Beatles")
    second = track("b", "Yesterday - Remastered 2009", "The Beatles")
    third = track("c", "Yesterday", "Beatles")
    ranked = rank("The Beatles", "Yesterday", [second, first, third])
    assert [c for _, c in ranked] == [first, third, second]
    assert all(0.0 <= s <= 1.0 for s, _ in ranked)


def test_no_candidates_no_match() -> None:
    assert best_match("Queen", "Bohemian Rhapsody", []) is None
    assert score("Queen", "Bohemian Rhapsody", "Bohemian Rhapsody", []) == 0.0


def test_threshold_is_a_parameter() -> None:
    slip = track("slip", "Bohemian Rapsody", "Queen")  # a spelling slip scores a little less
    assert best_match("Queen", "Bohemian Rhapsody", [slip]) == slip
    assert best_match("Queen", "Bohemian Rhapsody", [slip], threshold=0.99) is None


# -- versions must agree (issue 9.6) -------------------------------------------------------------


def test_an_alternate_mix_never_gets_the_studio_recording() -> None:
    studio = track("studio", "Hey Pocky A-Way", "The Meters")
    assert best_match("The Meters", "Hey Pocky A-Way (Alternate Mix)", [studio]) is None
    alternate = track("alt", "Hey Pocky A-Way - Alternate Mix", "The Meters")
    assert best_match("The Meters", "Hey Pocky A-Way (Alternate Mix)", [studio, alternate]) == (
        alternate
    )


def test_a_live_line_never_gets_the_studio_recording() -> None:
    studio = track("studio", "Ruler of My Heart", "Irma Thomas")
    line = ("Irma Thomas", "Ruler of My Heart (Live at Tipitina's 1989)")
    assert best_match(*line, [studio]) is None
    other_night = track("live", "Ruler of My Heart - Live at the Jazz Fest", "Irma Thomas")
    same_night = track("tip", "Ruler of My Heart (Live at Tipitina's, 1989)", "Irma Thomas")
    assert best_match(*line, [studio, other_night]) == other_night
    assert best_match(*line, [studio, other_night, same_night]) == same_night


@pytest.mark.parametrize(
    "note",
    [
        "Demo",
        "Remix",
        "Chromatics Mix",
        "Acoustic",
        "Instrumental",
        "Radio Edit",
        "Interview",
        "Karaoke Version",
        "Originally Performed by Queen",
        "Cover",
        "Tribute",
        "BBC Session",
        "Take 2",
        "Rehearsal",
        "Extended Mix",
        "Piano Version",
        "Live",
        "Alternate Take",
    ],
)
def test_every_version_word_must_agree_both_ways(note: str) -> None:
    plain = track("plain", "Somebody to Love", "Queen")
    other = track("other", f"Somebody to Love - {note}", "Queen")
    assert best_match("Queen", "Somebody to Love", [other]) is None
    assert best_match("Queen", f"Somebody to Love ({note})", [plain]) is None
    assert best_match("Queen", f"Somebody to Love ({note})", [plain, other]) == other


@pytest.mark.parametrize(
    "note",
    [
        "Remastered",
        "2011 Remaster",
        "Remastered 2009",
        "1977",
        "Single Version",
        "Album Version",
        "Mono",
        "Stereo",
        "2009 Stereo Mix",
        "feat. Freddie Mercury",
        "ft. Freddie Mercury",
        "with Freddie Mercury",
        "Explicit",
        "Deluxe Edition",
        "Original Mix",
    ],
)
def test_neutral_notes_do_not_make_another_version(note: str) -> None:
    noted = track("noted", f"Somebody to Love ({note})", "Queen")
    plain = track("plain", "Somebody to Love", "Queen")
    assert best_match("Queen", "Somebody to Love", [noted]) == noted
    assert best_match("Queen", f"Somebody to Love - {note}", [plain]) == plain
    assert best_match("Queen", "Somebody to Love", [noted, plain]) == plain  # plainest first


@pytest.mark.parametrize(
    "album", ["Live at the Warehouse", "MTV Unplugged in New York", "Hits (Live)", "The Demos"]
)
def test_a_live_or_demo_album_makes_its_plainly_named_tracks_versions(album: str) -> None:
    on_album = Candidate("spotify:track:1", "Hey Pocky A-Way", ("The Meters",), album=album)
    assert best_match("The Meters", "Hey Pocky A-Way", [on_album]) is None
    studio = Candidate("spotify:track:2", "Hey Pocky A-Way", ("The Meters",), album="Rejuvenation")
    assert best_match("The Meters", "Hey Pocky A-Way", [on_album, studio]) == studio
    own_note = Candidate("spotify:track:3", "Hey Pocky A-Way - Remastered", ("The Meters",))
    assert best_match("The Meters", "Hey Pocky A-Way", [own_note]) == own_note
    versions = "live" if album != "The Demos" else "demo"
    assert best_match("The Meters", f"Hey Pocky A-Way ({versions})", [studio, on_album]) == on_album


def test_a_studio_album_whose_name_has_live_in_it_is_not_a_live_album() -> None:
    song = Candidate("spotify:track:1", "Doll Parts", ("Hole",), album="Live Through This")
    assert best_match("Hole", "Doll Parts", [song]) == song


def test_karaoke_and_tribute_artists_are_versions_too() -> None:
    karaoke = track("k", "Hallelujah", "Karaoke Hits Band")
    tribute = track("t", "Hallelujah", "Leonard Cohen Tribute Band")
    assert best_match("Leonard Cohen", "Hallelujah", [karaoke, tribute]) is None


def test_titles_that_differ_by_a_word_are_different_songs() -> None:
    assert best_match("Bee Gees", "Angel", [track("1", "Angels", "Bee Gees")]) is None
    assert best_match("Blur", "Song 2", [track("2", "Song 3", "Blur")]) is None
    slip = track("3", "Sweet Child O' Mine", "Guns N' Roses")
    assert best_match("Guns n Roses", "Sweet Child O Mine", [slip]) == slip


def test_a_subtitle_may_be_left_out_but_not_a_part_number() -> None:
    hill = track("1", "Running Up That Hill (A Deal With God) - 2018 Remaster", "Kate Bush")
    assert best_match("Kate Bush", "Running Up That Hill", [hill]) == hill
    wall = track("2", "Another Brick in the Wall (Part 2)", "Pink Floyd")
    assert best_match("Pink Floyd", "Another Brick in the Wall", [wall]) is None
    twelve = track("3", 'Running Up That Hill - 12" Mix', "Kate Bush")
    assert best_match("Kate Bush", "Running Up That Hill", [twelve]) is None


def test_a_title_word_in_brackets_is_not_a_version_note() -> None:
    song = track("1", "Take Me Home, Country Roads", "John Denver")
    assert best_match("John Denver", "Country Roads (Take Me Home)", [song]) is None
    assert normalise_title("Country Roads (Take Me Home)") == "country roads take me home"


def test_the_closest_rejected_candidate_says_why() -> None:
    studio = track("studio", "Ruler of My Heart", "Irma Thomas")
    verdict = best_rejected("Irma Thomas", "Ruler of My Heart (Live at Tipitina's 1989)", [studio])
    assert verdict is not None
    assert verdict.candidate == studio
    assert verdict.score == pytest.approx(VERSION_MISMATCH, abs=0.02)
    assert verdict.why == (
        "another version: the track is the plain recording, the line asks for live"
    )
    far = best_rejected("Queen", "Ladies First", [track("q", "Ladies First", "Queen Latifah")])
    assert far is not None
    assert far.why is not None
    assert far.why.startswith("score 0.")
    assert "artist 0." in far.why
    assert best_rejected("Queen", "Ladies First", []) is None
    assert (
        best_rejected("Queen", "Somebody to Love", [track("s", "Somebody to Love", "Queen")])
        is None
    )


# -- misses expire (issue 9.5) -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_miss_expires_after_an_hour_then_less_often_up_to_a_day() -> None:
    clock, state = Clock(), {}
    memory = MatchMemory(state, clock=clock)
    waits = []
    for _ in range(8):
        memory.put("nobody - nothing", "")
        start = clock.now
        assert "nobody - nothing" in memory
        assert memory.get("nobody - nothing") == ""
        while "nobody - nothing" in memory:
            clock.now += 60
        waits.append(round((clock.now - start) / 3600))
    assert waits == [1, 2, 4, 8, 16, 24, 24, 24]


def test_a_match_is_kept_and_an_old_style_miss_is_searched_again() -> None:
    clock = Clock()
    memory = MatchMemory({"matches": {"a - b": "spotify:track:x", "c - d": ""}}, clock=clock)
    clock.now += 365 * 86400
    assert "a - b" in memory
    assert memory.get("a - b") == "spotify:track:x"
    assert "c - d" not in memory  # stored without a time by an older version: search again
    memory.put("a - b", "")
    memory.put("a - b", "spotify:track:y")  # found after all: kept for good
    state: dict[str, Any] = {}
    memory.state = state
    memory.save()
    assert state["matches"]["a - b"] == "spotify:track:y"


@pytest.fixture
def harness(fake_spotify: FakeSpotify, tmp_path: Path) -> Iterator[JobHarness]:
    with JobHarness(fake_spotify, tmp_path / "state") as h:
        yield h


def test_a_song_that_reaches_spotify_after_a_miss_is_found_hours_later(
    fake_spotify: FakeSpotify, harness: JobHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_spotify
    clock = Clock()
    monkeypatch.setattr(matching, "now", clock)
    pid = fake.add_playlist(uris=[])
    options = {"playlist": pid, "sources": [{"search": ["Newcomer - First Single"]}]}
    first = harness.run("playlist_updater", options)
    assert first.status is RunStatus.OK, first.line()
    assert "1 unmatched" in (first.summary or "")
    uri = fake.add_track("First Single", ["Newcomer"])  # released on Spotify meanwhile

    fake.clear_requests()
    clock.now += 30 * 60
    assert "1 unmatched" in (harness.run("playlist_updater", options).summary or "")
    assert fake.count("GET", r"/search$") == 0  # a miss half an hour old is not searched again

    clock.now += 31 * 60
    found = harness.run("playlist_updater", options)
    assert found.status is RunStatus.OK, found.line()
    assert fake.playlist_uris(pid) == [uri]
    assert "0 unmatched" in (found.summary or "")


# -- over HTTP: versions and the unmatched report (issue 9.6) -------------------------------------


def test_the_job_takes_the_version_a_line_names_or_reports_the_closest_and_why(
    fake_spotify: FakeSpotify, harness: JobHarness, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_spotify
    studio_meters = fake.add_track("Hey Pocky A-Way", ["The Meters"])
    alternate = fake.add_track("Hey Pocky A-Way - Alternate Mix", ["The Meters"])
    studio_irma = fake.add_track("Ruler of My Heart", ["Irma Thomas"])
    pid = fake.add_playlist(uris=[])
    lines = [
        "The Meters - Hey Pocky A-Way (Alternate Mix)",
        "Irma Thomas - Ruler of My Heart (Live at Tipitina's 1989)",
        "The Meters - Hey Pocky A-Way",
    ]
    with caplog.at_level(logging.WARNING, logger="job.job"):
        outcome = harness.run("playlist_updater", {"playlist": pid, "sources": [{"search": lines}]})
    assert outcome.status is RunStatus.OK, outcome.line()
    assert fake.playlist_uris(pid) == [alternate, studio_meters]
    report = next(r.getMessage() for r in caplog.records if "matched no track" in r.getMessage())
    assert report == (
        "1 line(s) matched no track: Irma Thomas - Ruler of My Heart (Live at Tipitina's 1989) "
        f"(closest: Irma Thomas - Ruler of My Heart ({studio_irma}), score 0.49: another "
        "version: the track is the plain recording, the line asks for live)"
    )
