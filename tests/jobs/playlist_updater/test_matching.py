"""Matching "Artist - Title" lines: the right track, or none rather than a wrong one."""

from __future__ import annotations

import pytest

from jobs.playlist_updater.matching import (
    best_match,
    normalise_artist,
    normalise_title,
    parse_line,
    rank,
    score,
    search_queries,
    split_artists,
)
from jobs.playlist_updater.target import Candidate


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
        ("Guns N' Roses", "guns n roses"),
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
    assert search_queries("Calvin Harris feat. Dua Lipa", 'One Kiss (Radio Edit) "x"') == [
        'track:"One Kiss x" artist:"Calvin Harris"',
        "Calvin Harris One Kiss x",
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


def test_studio_version_beats_live_and_live_is_accepted_alone() -> None:
    live = track("live", "Don't Stop Me Now - Live at Wembley", "Queen")
    studio = track("studio", "Don't Stop Me Now - Remastered 2011", "Queen")
    assert best_match("Queen", "Don't Stop Me Now", [live, studio]) == studio
    assert best_match("Queen", "Don't Stop Me Now", [live]) == live


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
    live = track("live", "Bohemian Rhapsody - Live Aid", "Queen")
    assert best_match("Queen", "Bohemian Rhapsody", [live]) == live
    assert best_match("Queen", "Bohemian Rhapsody", [live], threshold=0.95) is None
