"""Property tests: plans reach their target within Spotify's limits, never dearer than replace."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.playlist_updater.planner import (
    MAX_URIS,
    Add,
    Move,
    Remove,
    Replace,
    apply,
    diff_plan,
    plan,
    replace_plan,
)


@st.composite
def unrelated_lists(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Two independent lists over a small alphabet, so duplicates are common."""
    alphabet = [f"spotify:track:{i}" for i in range(draw(st.integers(1, 12)))]
    uris = st.sampled_from(alphabet)
    return draw(st.lists(uris, max_size=300)), draw(st.lists(uris, max_size=300))


@st.composite
def edited_lists(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A list and an edit of it (insertions, deletions, moves, duplicates), as runs produce.

    A large alphabet makes batches of more than 100 distinct URIs possible.
    """
    size = draw(st.integers(1, 400))
    uris = st.integers(0, size).map(lambda i: f"spotify:track:{i}")
    current = draw(st.lists(uris, max_size=300))
    target = list(current)
    kinds = st.sampled_from(["insert", "delete", "move", "block"])
    edits = draw(st.lists(st.tuples(kinds, st.integers(0, 10**6)), max_size=40))
    for kind, seed in edits:
        at = seed % (len(target) + 1)
        if kind == "insert":
            target[at:at] = draw(st.lists(uris, min_size=1, max_size=120))
        elif target and kind == "delete":
            del target[at % len(target) : at % len(target) + seed % 7 + 1]
        elif target and kind == "move":
            target.insert(seed % len(target), target.pop(at % len(target)))
        elif target:
            block = target[at % len(target) : at % len(target) + seed % 5 + 1]
            del target[at % len(target) : at % len(target) + len(block)]
            where = seed % (len(target) + 1)
            target[where:where] = block
    return current, target


def check(current: list[str], target: list[str]) -> None:
    best = plan(current, target)
    # apply() refuses any op over 100 URIs, without URIs, or with an index out of range at the
    # moment it runs, so reaching the target also proves every op was valid.
    assert apply(current, best.ops) == target
    assert apply(current, diff_plan(current, target).ops) == target
    assert apply(current, replace_plan(target).ops) == target
    assert best.requests <= replace_plan(target).requests
    assert (best.requests == 0) == (current == target)
    for op in best.ops:
        if isinstance(op, Remove | Add | Replace):
            assert len(op.uris) <= MAX_URIS
        if isinstance(op, Remove):
            assert len(set(op.uris)) == len(op.uris)
        if isinstance(op, Move):
            assert op.range_length >= 1
    assert len(target) == len(current) + best.added - best.removed
    assert best.added == sum((Counter(target) - Counter(current)).values())


@settings(max_examples=300, deadline=None)
@given(unrelated_lists())
def test_plan_reaches_unrelated_target(lists: tuple[list[str], list[str]]) -> None:
    check(*lists)


@settings(max_examples=300, deadline=None)
@given(edited_lists())
def test_plan_reaches_edited_target(lists: tuple[list[str], list[str]]) -> None:
    check(*lists)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=300))
def test_unchanged_list_needs_nothing(current: list[str]) -> None:
    assert plan(current, list(current)).ops == ()
