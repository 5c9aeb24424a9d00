"""The planner: Spotify's write semantics simulated exactly, and plans that are short and right."""

from __future__ import annotations

import pytest

from jobs.playlist_updater.planner import (
    Add,
    Move,
    Plan,
    Remove,
    Replace,
    apply,
    diff_plan,
    plan,
    replace_plan,
)

TEN = [f"t{i}" for i in range(10)]


def tracks(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# --- apply: Spotify's semantics -------------------------------------------------------------


def test_move_first_to_end_as_in_spotify_docs() -> None:
    assert apply(TEN, [Move(0, 10)]) == TEN[1:] + ["t0"]


def test_move_last_to_start_as_in_spotify_docs() -> None:
    assert apply(TEN, [Move(9, 0)]) == ["t9", *TEN[:9]]


def test_move_block_of_two_to_start_as_in_spotify_docs() -> None:
    eleven = tracks(11)
    assert apply(eleven, [Move(9, 0, 2)]) == ["t9", "t10", *eleven[:9]]


def test_move_forward_inserts_before_the_original_index() -> None:
    # insert_before counts positions before the move: t1 lands between t3 and t4.
    assert apply(["t0", "t1", "t2", "t3", "t4"], [Move(1, 4)]) == ["t0", "t2", "t3", "t1", "t4"]


def test_move_onto_itself_changes_nothing() -> None:
    assert apply(TEN, [Move(3, 3, 2), Move(3, 5, 2)]) == TEN


def test_remove_takes_every_occurrence() -> None:
    assert apply(["a", "b", "a", "c", "a"], [Remove(("a",))]) == ["b", "c"]


def test_add_at_position_and_at_end() -> None:
    assert apply(["a", "b"], [Add(("x",), 1), Add(("y", "z"), None)]) == ["a", "x", "b", "y", "z"]


def test_replace_then_add() -> None:
    assert apply(TEN, [Replace(("x",)), Add(("y",), 0)]) == ["y", "x"]
    assert apply(TEN, [Replace(())]) == []


@pytest.mark.parametrize(
    "op",
    [
        Add(tuple(tracks(101)), None),
        Remove(tuple(tracks(101))),
        Replace(tuple(tracks(101))),
        Add((), None),
        Remove(()),
        Add(("x",), 11),
        Add(("x",), -1),
        Move(9, 0, 2),
        Move(-1, 0),
        Move(0, 11),
        Move(0, 1, 0),
    ],
)
def test_apply_refuses_what_spotify_refuses(op: Add | Remove | Replace | Move) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        apply(TEN, [op])


# --- plans ---------------------------------------------------------------------------------


def test_unchanged_playlist_needs_no_request() -> None:
    result = plan(tracks(1000), tracks(1000))
    assert result == Plan((), 0, 0, 0)
    assert result.summary() == "+0 -0 ~0 moved"


def test_empty_to_empty_needs_no_request() -> None:
    assert plan([], []).requests == 0


def test_rolling_window_is_one_delete_and_one_insert() -> None:
    current = tracks(10_000)
    new = tracks(100, "new")[::-1]
    target = new + current[:-100]
    result = plan(current, target)
    assert result.ops == (Remove(tuple(current[-100:])), Add(tuple(new), 0))
    assert (result.added, result.removed, result.moved) == (100, 100, 0)


def test_one_moved_track_is_one_reorder() -> None:
    current = tracks(500)
    target = current[:]
    target.insert(10, target.pop(400))
    result = plan(current, target)
    assert result.ops == (Move(400, 10),)
    assert result.summary() == "+0 -0 ~1 moved"


def test_adjacent_moved_tracks_move_as_one_block() -> None:
    current = tracks(500)
    target = current[200:203] + current[:200] + current[203:]
    result = plan(current, target)
    assert result.ops == (Move(200, 0, 3),)
    assert apply(current, result.ops) == target


def test_played_again_is_deleted_and_reinserted_with_the_new_ones() -> None:
    # "c" was played again after new "x": it goes to the top, the oldest ("e") drops off.
    # A long tail keeps a full replace (3 requests) from being the cheaper plan.
    tail = tracks(300)
    current = ["a", "b", "c", "d", *tail, "e"]
    target = ["c", "x", "a", "b", "d", *tail]
    result = plan(current, target)
    assert apply(current, result.ops) == target
    assert result.ops == (Remove(("c", "e")), Add(("c", "x"), 0))
    assert (result.added, result.removed, result.moved) == (1, 1, 1)


def test_duplicate_that_must_stay_once_is_deleted_and_readded() -> None:
    tail = tracks(300)
    current = ["a", "b", "a", "c", *tail]
    target = ["a", "b", "c", *tail]
    result = plan(current, target)
    assert apply(current, result.ops) == target
    assert result.ops == (Remove(("a",)), Add(("a",), 0))
    assert (result.added, result.removed) == (0, 1)


def test_extra_copy_is_just_added() -> None:
    current = ["a", "b", *tracks(300)]
    target = ["a", "b", *tracks(300), "a"]
    assert plan(current, target).ops == (Add(("a",), None),)


def test_small_playlist_is_replaced_in_one_request() -> None:
    result = plan(["a", "b", "c", "d", "e"], ["c", "x", "a", "b", "d"])
    assert result.ops == (Replace(("c", "x", "a", "b", "d")),)
    assert (result.added, result.removed, result.moved) == (1, 1, 1)


def test_emptying_a_playlist_is_one_request() -> None:
    result = plan(tracks(250), [])
    assert result.requests == 1
    assert apply(tracks(250), result.ops) == []
    assert result.removed == 250


def test_more_than_100_changes_are_batched() -> None:
    current = tracks(1000)
    target = tracks(150, "new") + current[250:]
    result = plan(current, target)
    assert apply(current, result.ops) == target
    assert result.ops == (
        Remove(tuple(current[:100])),
        Remove(tuple(current[100:200])),
        Remove(tuple(current[200:250])),
        Add(tuple(target[:100]), 0),
        Add(tuple(target[100:150]), 100),
    )


def test_scattered_changes_fall_back_to_replace() -> None:
    current = tracks(1000)
    target = current[:]
    for i in range(0, 1000, 5):  # 200 replacements, each its own insertion point
        target[i] = f"new{i}"
    result = plan(current, target)
    assert result.ops == replace_plan(target).ops
    assert result.requests == 10
    assert (result.added, result.removed) == (200, 200)
    assert diff_plan(current, target).requests > 10


def test_diff_wins_a_tie_to_keep_added_at_dates() -> None:
    result = plan([], tracks(150))
    assert result.ops == (Add(tuple(tracks(100)), None), Add(tuple(tracks(150)[100:]), None))


def test_replace_plan_pages_by_100() -> None:
    target = tracks(250)
    result = replace_plan(target)
    assert result.ops == (
        Replace(tuple(target[:100])),
        Add(tuple(target[100:200]), None),
        Add(tuple(target[200:]), None),
    )
    assert replace_plan([]).ops == (Replace(()),)


def test_replace_plan_counts_against_current() -> None:
    result = replace_plan(["a", "x"], current=["a", "b"])
    assert (result.added, result.removed, result.moved) == (1, 1, 0)


def test_moves_to_top_batch_as_delete_and_insert() -> None:
    current = tracks(2000)
    picked = current[7::97]  # 21 tracks spread over the playlist, to the top in this order
    target = picked + [uri for uri in current if uri not in picked]
    result = plan(current, target)
    assert apply(current, result.ops) == target
    assert result.requests == 2
    assert result.moved == 21


def test_reversed_playlist_uses_replace() -> None:
    current = tracks(300)
    result = plan(current, current[::-1])
    assert result.requests == 3
    assert apply(current, result.ops) == current[::-1]
