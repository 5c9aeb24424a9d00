"""The target list: exact content and order for every mode, and through the planner."""

from __future__ import annotations

from typing import Literal

import pytest

from jobs.playlist_updater.planner import apply, plan
from jobs.playlist_updater.target import Candidate, build_target, dedupe_keys


def tracks(*names: str) -> list[Candidate]:
    return [Candidate(name) for name in names]


def test_replace_is_the_incoming_list() -> None:
    result = build_target(
        mode="replace",
        incoming=tracks("a", "b", "c"),
        current=["x", "a", "y"],
        max_tracks=None,
        position="top",
        dedupe=False,
    )
    assert result == ["a", "b", "c"]


def test_replace_caps_keeping_the_first_and_dedupes() -> None:
    result = build_target(
        mode="replace",
        incoming=tracks("a", "b", "a", "c", "d"),
        current=[],
        max_tracks=3,
        position="bottom",
        dedupe=True,
    )
    assert result == ["a", "b", "c"]


def test_replace_without_dedupe_keeps_duplicates() -> None:
    result = build_target(
        mode="replace",
        incoming=tracks("a", "b", "a"),
        current=[],
        max_tracks=None,
        position="top",
        dedupe=False,
    )
    assert result == ["a", "b", "a"]


def test_empty_source_keeps_the_playlist_in_replace_mode() -> None:
    # The radio's site was down: an empty feed must not wipe the playlist.
    for allow_empty, expected in ((False, ["a", "b"]), (True, [])):
        result = build_target(
            mode="replace",
            incoming=[],
            current=["a", "b"],
            max_tracks=1,
            position="top",
            dedupe=True,
            allow_empty=allow_empty,
        )
        assert result == expected


def test_source_whose_tracks_are_all_excluded_empties_the_playlist() -> None:
    result = build_target(
        mode="replace",
        incoming=[Candidate("a", explicit=True)],
        current=["a", "b"],
        max_tracks=None,
        position="top",
        dedupe=True,
        exclude=lambda c: c.explicit,
    )
    assert result == []


def test_append_top_puts_the_newest_first() -> None:
    result = build_target(
        mode="append",
        incoming=tracks("n1", "n2", "n3"),  # a log: n3 is the newest
        current=["o1", "o2"],
        max_tracks=None,
        position="top",
        dedupe=True,
    )
    assert result == ["n3", "n2", "n1", "o1", "o2"]


def test_append_bottom_keeps_incoming_order() -> None:
    result = build_target(
        mode="append",
        incoming=tracks("n1", "n2"),
        current=["o1", "o2"],
        max_tracks=None,
        position="bottom",
        dedupe=True,
    )
    assert result == ["o1", "o2", "n1", "n2"]


def test_rolling_window_drops_the_oldest_at_the_other_end() -> None:
    top = build_target(
        mode="append",
        incoming=tracks("n1", "n2"),
        current=["o1", "o2", "o3"],
        max_tracks=4,
        position="top",
        dedupe=True,
    )
    assert top == ["n2", "n1", "o1", "o2"]
    bottom = build_target(
        mode="append",
        incoming=tracks("n1", "n2"),
        current=["o1", "o2", "o3"],
        max_tracks=4,
        position="bottom",
        dedupe=True,
    )
    assert bottom == ["o2", "o3", "n1", "n2"]


def test_played_again_moves_to_the_top_and_survives_the_trim() -> None:
    # "old" is the oldest track, at the bottom, about to be trimmed; the radio plays it again.
    current = ["b", "a", "old"]
    result = build_target(
        mode="append",
        incoming=tracks("d", "old"),
        current=current,
        max_tracks=3,
        position="top",
        dedupe=True,
    )
    assert result == ["old", "d", "b"]
    # The original script deleted the trimmed copy by URI, which took the new one too.
    assert apply(current, plan(current, result).ops) == ["old", "d", "b"]


def test_played_again_at_the_bottom() -> None:
    result = build_target(
        mode="append",
        incoming=tracks("a"),
        current=["a", "b", "c"],
        max_tracks=3,
        position="bottom",
        dedupe=True,
    )
    assert result == ["b", "c", "a"]


def test_without_dedupe_incoming_is_added_even_if_present() -> None:
    result = build_target(
        mode="append",
        incoming=tracks("a"),
        current=["a", "b"],
        max_tracks=None,
        position="top",
        dedupe=False,
    )
    assert result == ["a", "a", "b"]


def test_duplicates_already_in_the_playlist_collapse_towards_position() -> None:
    current = ["a", "b", "a", "c", "b"]
    cases: list[tuple[Literal["top", "bottom"], list[str]]] = [
        ("top", ["a", "b", "c"]),
        ("bottom", ["a", "c", "b"]),
    ]
    for position, expected in cases:
        target = build_target(
            mode="append",
            incoming=[],
            current=current,
            max_tracks=None,
            position=position,
            dedupe=True,
        )
        assert target == expected
        assert apply(current, plan(current, target).ops) == expected


def test_excludes_reach_incoming_and_known_tracks_only() -> None:
    incoming = [Candidate("n1", explicit=True), Candidate("n2"), Candidate("n3", explicit=True)]
    known = {"mine": Candidate("mine", explicit=True)}
    result = build_target(
        mode="append",
        incoming=incoming,
        current=["hand", "mine"],  # "hand": added by the user, nothing known about it
        max_tracks=None,
        position="top",
        dedupe=True,
        exclude=lambda c: c.explicit,
        known=known,
    )
    assert result == ["n2", "hand"]


def test_user_added_tracks_stay_until_trimmed() -> None:
    result = build_target(
        mode="append",
        incoming=tracks("n1"),
        current=["hand1", "job", "hand2"],
        max_tracks=3,
        position="top",
        dedupe=True,
    )
    assert result == ["n1", "hand1", "job"]


def test_dedupe_by_isrc_catches_the_same_recording_under_another_uri() -> None:
    known = {"album-version": Candidate("album-version", isrc="gbaye0601498")}
    incoming = [Candidate("single-version", isrc="GBAYE0601498"), Candidate("other", isrc="X")]
    result = build_target(
        mode="append",
        incoming=incoming,
        current=["album-version", "c"],
        max_tracks=None,
        position="top",
        dedupe=True,
        dedupe_by="isrc",
        known=known,
    )
    assert result == ["other", "single-version", "c"]


def test_dedupe_by_artist_title() -> None:
    incoming = [
        Candidate("u1", name="Hey Jude", artists=("The Beatles",)),
        Candidate("u2", name="Hey Jude - Remastered 2015", artists=("Beatles",)),
        Candidate("u3", name="Let It Be", artists=("The Beatles",)),
    ]
    result = build_target(
        mode="replace",
        incoming=incoming,
        current=[],
        max_tracks=None,
        position="top",
        dedupe=True,
        dedupe_by="artist_title",
    )
    assert result == ["u1", "u3"]


def test_dedupe_keys_fall_back_to_the_uri() -> None:
    assert dedupe_keys(Candidate("u"), "isrc") == (("uri", "u"),)
    assert dedupe_keys(Candidate("u", name="x"), "artist_title") == (("uri", "u"),)


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_max_tracks_zero_and_negative(mode: Literal["append", "replace"]) -> None:
    def build(max_tracks: int) -> list[str]:
        return build_target(
            mode=mode,
            incoming=tracks("a"),
            current=["b"],
            max_tracks=max_tracks,
            position="top",
            dedupe=True,
        )

    assert build(0) == []
    with pytest.raises(ValueError, match="max_tracks"):
        build(-1)


def test_radio_runs_in_a_row() -> None:
    """A rolling 5-track radio playlist over three runs, each plan applied to the last result."""
    playlist: list[str] = []
    runs = [["s1", "s2", "s3"], ["s4", "s2", "s5"], ["s6", "s7", "s1"]]
    expected = [
        ["s3", "s2", "s1"],
        ["s5", "s2", "s4", "s3", "s1"],
        ["s1", "s7", "s6", "s5", "s2"],
    ]
    for plays, want in zip(runs, expected, strict=True):
        target = build_target(
            mode="append",
            incoming=tracks(*plays),
            current=playlist,
            max_tracks=5,
            position="top",
            dedupe=True,
        )
        assert target == want
        playlist = apply(playlist, plan(playlist, target).ops)
        assert playlist == want
