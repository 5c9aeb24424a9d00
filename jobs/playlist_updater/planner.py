"""Turn a playlist's current items into a target list in the fewest write requests.

Spotify offers four write requests on `/playlists/{id}/items`, each one request:

- `Remove` (DELETE): removes *every* occurrence of each URI, at most 100 URIs.
- `Add` (POST): inserts up to 100 URIs at a position (or at the end).
- `Move` (reorder PUT): moves one contiguous block, with Spotify's `insert_before` semantics
  (an index into the list as it is *before* the move).
- `Replace` (replace PUT): the playlist becomes these (at most 100) URIs.

`plan()` returns the cheaper of a diff plan (deletions, reorders, insertions of contiguous runs)
and a full replace (`ceil(len(target) / 100)` requests). On a tie the diff wins: it keeps the
"added at" date of every track it does not touch, which a full replace resets.

`apply()` simulates the requests exactly; tests use it to prove a plan reaches its target and
dry runs use it to show the result.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

MAX_URIS = 100
"""Most URIs one write request may carry."""


@dataclass(frozen=True)
class Remove:
    """DELETE: remove every occurrence of each of these URIs (at most 100)."""

    uris: tuple[str, ...]


@dataclass(frozen=True)
class Add:
    """POST: insert these URIs (at most 100) before index `position`, or at the end when None."""

    uris: tuple[str, ...]
    position: int | None = None


@dataclass(frozen=True)
class Move:
    """Reorder PUT: move `range_length` items from `range_start` to before `insert_before`.

    `insert_before` indexes the list as it is before the move, as Spotify defines it: moving the
    first of 10 items to the end is `Move(0, 10)`, the last to the start `Move(9, 0)`.
    """

    range_start: int
    insert_before: int
    range_length: int = 1


@dataclass(frozen=True)
class Replace:
    """Replace PUT: the playlist becomes exactly these URIs (at most 100)."""

    uris: tuple[str, ...]


Op: TypeAlias = Remove | Add | Move | Replace


@dataclass(frozen=True)
class Plan:
    """Write requests to run in order, and what they change in a user's terms.

    Attributes:
        ops: the requests, each valid against the list left by the ones before it.
        added: tracks in the target beyond what the playlist already held (per URI, by count).
        removed: tracks of the playlist not in the target (per URI, by count).
        moved: tracks kept whose order relative to the other kept tracks changed (the fewest
            such tracks, whatever requests the plan used to move them).
    """

    ops: tuple[Op, ...]
    added: int = 0
    removed: int = 0
    moved: int = 0

    @property
    def requests(self) -> int:
        """How many write requests the plan makes."""
        return len(self.ops)

    def summary(self) -> str:
        """The change in the run summary's words, e.g. `+12 -3 ~1 moved`."""
        return f"+{self.added} -{self.removed} ~{self.moved} moved"


def apply(current: Sequence[str], ops: Iterable[Op]) -> list[str]:
    """Simulate the requests as Spotify runs them and return the resulting list.

    Args:
        current: the playlist's items (URIs) in order.
        ops: the requests, applied in order.

    Returns:
        The list after the last request.

    Raises:
        ValueError: a request Spotify would refuse (too many or no URIs, an index out of range).
    """
    items = list(current)
    for op in ops:
        if isinstance(op, Remove):
            _check_count(op, op.uris, allow_empty=False)
            gone = set(op.uris)
            items = [uri for uri in items if uri not in gone]
        elif isinstance(op, Add):
            _check_count(op, op.uris, allow_empty=False)
            position = len(items) if op.position is None else op.position
            if not 0 <= position <= len(items):
                raise ValueError(f"{op}: position outside 0..{len(items)}")
            items[position:position] = op.uris
        elif isinstance(op, Replace):
            _check_count(op, op.uris, allow_empty=True)
            items = list(op.uris)
        elif isinstance(op, Move):
            start, before, length = op.range_start, op.insert_before, op.range_length
            if length < 1 or start < 0 or start + length > len(items):
                raise ValueError(f"{op}: range outside 0..{len(items)}")
            if not 0 <= before <= len(items):
                raise ValueError(f"{op}: insert_before outside 0..{len(items)}")
            if start <= before <= start + length:
                continue  # the block already sits there
            block = items[start : start + length]
            del items[start : start + length]
            if before > start:
                before -= length
            items[before:before] = block
        else:
            raise TypeError(f"not a playlist write: {op!r}")
    return items


def _check_count(op: Op, uris: tuple[str, ...], *, allow_empty: bool) -> None:
    if len(uris) > MAX_URIS:
        raise ValueError(f"{type(op).__name__} of {len(uris)} URIs: at most {MAX_URIS}")
    if not uris and not allow_empty:
        raise ValueError(f"{type(op).__name__} without URIs")


def plan(current: Sequence[str], target: Sequence[str]) -> Plan:
    """The fewest write requests found that turn `current` into `target`.

    The cheaper of `diff_plan` and `replace_plan`; the diff on a tie. No request at all when the
    lists are equal.

    Args:
        current: the playlist's items (URIs) in order.
        target: what the playlist should hold, in order.
    """
    current, target = list(current), list(target)
    added, removed, moved = _changes(current, target)
    if current == target:
        return Plan((), added, removed, moved)
    replace_ops = _replace_ops(target)
    diff_ops = _diff_ops(current, target, budget=len(replace_ops))
    ops = diff_ops if diff_ops is not None and len(diff_ops) <= len(replace_ops) else replace_ops
    return Plan(tuple(ops), added, removed, moved)


def replace_plan(target: Sequence[str], current: Sequence[str] | None = None) -> Plan:
    """A full replace: one replace PUT of the first 100 URIs, then a POST per further 100.

    Always at least one request (an empty target is a replace with no URIs, which clears).

    Args:
        target: what the playlist should hold, in order.
        current: the playlist's items, only to fill in the plan's counts.
    """
    counts = _changes(list(current), list(target)) if current is not None else (len(target), 0, 0)
    return Plan(tuple(_replace_ops(target)), *counts)


def diff_plan(current: Sequence[str], target: Sequence[str]) -> Plan:
    """Deletions, then reorders, then insertions of contiguous runs; no replace PUT.

    Args:
        current: the playlist's items (URIs) in order.
        target: what the playlist should hold, in order.
    """
    current, target = list(current), list(target)
    ops = _diff_ops(current, target, budget=None)
    assert ops is not None  # only a budget makes it give up
    return Plan(tuple(ops), *_changes(current, target))


def _replace_ops(target: Sequence[str]) -> list[Op]:
    chunks = _chunks(list(target))
    ops: list[Op] = [Replace(chunks[0] if chunks else ())]
    ops.extend(Add(chunk, None) for chunk in chunks[1:])
    return ops


def _chunks(uris: list[str]) -> list[tuple[str, ...]]:
    return [tuple(uris[i : i + MAX_URIS]) for i in range(0, len(uris), MAX_URIS)]


def _changes(current: list[str], target: list[str]) -> tuple[int, int, int]:
    """(added, removed, moved) as a user would count them, whatever requests do the work."""
    change = changes(current, target)
    return len(change.added), len(change.removed), len(change.moved)


@dataclass(frozen=True)
class Changes:
    """Which tracks a change adds, removes and moves, as a user counts them (see `Plan`).

    Attributes:
        added: URIs added, in target order (a URI twice when two more copies come).
        removed: URIs removed, in playlist order.
        moved: URIs kept whose order relative to the other kept tracks changed, in target order.
    """

    added: list[str]
    removed: list[str]
    moved: list[str]


def changes(current: Sequence[str], target: Sequence[str]) -> Changes:
    """The tracks behind `Plan.added`, `Plan.removed` and `Plan.moved`, for dry-run listings."""
    current, target = list(current), list(target)
    positions = _positions(target)
    taken: Counter[str] = Counter()
    keys: list[int] = []
    removed: list[str] = []
    for uri in current:
        slots = positions.get(uri)
        if slots is not None and taken[uri] < len(slots):
            keys.append(slots[taken[uri]])
            taken[uri] += 1
        else:
            removed.append(uri)
    kept = set(keys)
    added = [uri for index, uri in enumerate(target) if index not in kept]
    in_order = {keys[index] for index in _lis(keys)}
    moved = [target[key] for key in sorted(keys) if key not in in_order]
    return Changes(added, removed, moved)


def _positions(items: Sequence[str]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for index, uri in enumerate(items):
        positions.setdefault(uri, []).append(index)
    return positions


def _lis(values: Sequence[int]) -> list[int]:
    """Indices of one longest strictly increasing subsequence of `values`, in O(n log n)."""
    tails: list[int] = []  # tails[k]: smallest last value of an increasing run of length k + 1
    tail_index: list[int] = []
    previous = [-1] * len(values)
    for index, value in enumerate(values):
        k = bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_index.append(index)
        else:
            tails[k] = value
            tail_index[k] = index
        previous[index] = tail_index[k - 1] if k else -1
    chain: list[int] = []
    index = tail_index[-1] if tail_index else -1
    while index != -1:
        chain.append(index)
        index = previous[index]
    chain.reverse()
    return chain


def _heaviest_increasing(values: Sequence[int], weights: Sequence[int], size: int) -> set[int]:
    """Indices of an increasing subsequence of distinct `values` (in 0..size-1) of most weight.

    A Fenwick tree over values answers "heaviest chain ending below v" in O(log size).
    """
    tree_weight = [0] * (size + 1)
    tree_index = [-1] * (size + 1)
    previous = [-1] * len(values)
    best_weight, best_index = 0, -1
    for index, value in enumerate(values):
        weight, before = 0, -1
        position = value  # prefix 1..value covers values 0..value-1
        while position > 0:
            if tree_weight[position] > weight:
                weight, before = tree_weight[position], tree_index[position]
            position -= position & -position
        weight += weights[index]
        previous[index] = before
        if weight > best_weight:
            best_weight, best_index = weight, index
        position = value + 1
        while position <= size:
            if weight > tree_weight[position]:
                tree_weight[position], tree_index[position] = weight, index
            position += position & -position
    chain: set[int] = set()
    while best_index != -1:
        chain.add(best_index)
        best_index = previous[best_index]
    return chain


@dataclass
class _Layout:
    """One way to do the diff: which URIs go, which kept blocks move, which target runs are added.

    Survivors (items of the playlist whose URI is not deleted) keep their relative order except
    for moved blocks. A block is a maximal run of survivors, adjacent in the playlist, that are
    also adjacent among survivors in the target; it moves in one request. The blocks left in
    place are a heaviest increasing subsequence of blocks: by block count first (fewest moves)
    or by track count first (fewest tracks to delete and re-insert instead of moving).
    """

    drop: set[str]
    keys: list[int]  # target index of each survivor, in playlist order
    ranks: list[int]  # rank of each key among the keys
    blocks: list[tuple[int, int]]  # (start in survivors, length), in playlist order
    moved_blocks: list[int]  # indices into blocks
    kept: bytearray  # per target index: 1 when a survivor fills it
    cost: int


def _layout(
    current: list[str],
    target: list[str],
    positions: dict[str, list[int]],
    drop: set[str],
    *,
    by_tracks: bool = False,
) -> _Layout:
    taken: Counter[str] = Counter()
    keys: list[int] = []
    for uri in current:
        if uri in drop:
            continue
        keys.append(positions[uri][taken[uri]])
        taken[uri] += 1
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ranks = [0] * len(keys)
    for rank, index in enumerate(order):
        ranks[index] = rank
    blocks: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(ranks) + 1):
        if index == len(ranks) or ranks[index] != ranks[index - 1] + 1:
            blocks.append((start, index - start))
            start = index
    # Lexicographic weights packed in one int: the second criterion only breaks ties.
    scale = len(keys) + 1
    if by_tracks:
        weights = [length * scale + 1 for _, length in blocks]
    else:
        weights = [scale + length for _, length in blocks]
    in_place = _heaviest_increasing([ranks[start] for start, _ in blocks], weights, len(keys))
    moved_blocks = [b for b in range(len(blocks)) if b not in in_place]
    kept = bytearray(len(target))
    for key in keys:
        kept[key] = 1
    cost = math.ceil(len(drop) / MAX_URIS) + len(moved_blocks) + _runs_cost(kept)
    return _Layout(drop, keys, ranks, blocks, moved_blocks, kept, cost)


def _runs_cost(kept: bytearray) -> int:
    cost = run = 0
    for flag in kept:
        if flag:
            cost += math.ceil(run / MAX_URIS)
            run = 0
        else:
            run += 1
    return cost + math.ceil(run / MAX_URIS)


def _diff_ops(current: list[str], target: list[str], budget: int | None) -> list[Op] | None:
    """The diff plan's requests, or None when it cannot beat `budget` requests."""
    have, want = Counter(current), Counter(target)
    positions = _positions(target)
    # Absent from the target, or more copies than wanted: DELETE takes every copy, so all go
    # and the wanted copies come back as insertions.
    forced = {uri for uri, n in have.items() if n > want[uri]}
    base = _layout(current, target, positions, forced)
    layouts = [base]
    # A moved track can instead be deleted and re-inserted: free when the DELETE batch has room
    # and the track lands next to an insertion anyway (the "played again" case). Only for tracks
    # with one copy, since DELETE would take the others too.
    starts = [base]
    if base.moved_blocks:
        starts.append(_layout(current, target, positions, forced, by_tracks=True))
    for start in starts:
        movable = [
            b
            for b in start.moved_blocks
            if all(have[uri] == 1 for uri in _block_uris(target, start, b))
        ]
        if not movable:
            continue
        everything = forced | {uri for b in movable for uri in _block_uris(target, start, b)}
        layouts.append(_layout(current, target, positions, everything))
        if start is base:
            greedy = _greedy_drop(target, base, movable)
            if greedy != forced:
                layouts.append(_layout(current, target, positions, greedy))
    best = min(layouts, key=lambda layout: layout.cost)  # the first, fewest deletions, on a tie
    if budget is not None and best.cost > budget:
        return None
    return _materialise(current, target, best)


def _block_uris(target: list[str], layout: _Layout, block: int) -> list[str]:
    # A survivor's key is its index in the target, where the URI is the same.
    start, length = layout.blocks[block]
    return [target[key] for key in layout.keys[start : start + length]]


def _greedy_drop(target: list[str], base: _Layout, movable: list[int]) -> set[str]:
    """Convert moved blocks to delete + re-insert, in target order, when it costs no more.

    Tracks target runs of insertions as intervals so each decision is local: merging the block's
    positions with the runs beside it changes the POST count by a computable amount.
    """
    kept = bytearray(base.kept)
    size = len(kept)
    run_end: dict[int, int] = {}
    run_start: dict[int, int] = {}
    index = 0
    while index < size:
        if kept[index]:
            index += 1
            continue
        end = index
        while end + 1 < size and not kept[end + 1]:
            end += 1
        run_end[index], run_start[end] = end, index
        index = end + 1

    def runs(length: int) -> int:
        return math.ceil(length / MAX_URIS)

    drop = set(base.drop)
    deleted = len(drop)
    by_target = sorted(movable, key=lambda b: base.keys[base.blocks[b][0]])
    for block in by_target:
        start, length = base.blocks[block]
        slots = base.keys[start : start + length]  # increasing: ranks are consecutive
        first, last = slots[0], slots[-1]
        old = 0
        left = first
        if first > 0 and not kept[first - 1]:
            left = run_start[first - 1]
            old += runs(first - left)
        right = last
        if last + 1 < size and not kept[last + 1]:
            right = run_end[last + 1]
            old += runs(right - last)
        for a, b in zip(slots, slots[1:], strict=False):
            old += runs(b - a - 1)
        new = runs(right - left + 1)
        delta = new - old - 1 + runs(deleted + length) - runs(deleted)
        if delta > 0:
            continue
        for slot in slots:
            kept[slot] = 0
        run_end[left], run_start[right] = right, left
        deleted += length
        drop.update(target[slot] for slot in slots)
    return drop


def _materialise(current: list[str], target: list[str], layout: _Layout) -> list[Op]:
    ops: list[Op] = []
    doomed = [uri for uri in dict.fromkeys(current) if uri in layout.drop]
    ops.extend(Remove(chunk) for chunk in _chunks(doomed))

    # Moved blocks in increasing rank order, each placed right after the survivor ranked just
    # before it: that one is already in its final place (kept, or moved earlier).
    arrangement = list(layout.ranks)
    for block in sorted(layout.moved_blocks, key=lambda b: layout.ranks[layout.blocks[b][0]]):
        start, length = layout.blocks[block]
        first_rank = layout.ranks[start]
        source = arrangement.index(first_rank)
        before = 0 if first_rank == 0 else arrangement.index(first_rank - 1) + 1
        if source <= before <= source + length:
            continue
        ops.append(Move(source, before, length))
        moving = arrangement[source : source + length]
        del arrangement[source : source + length]
        if before > source:
            before -= length
        arrangement[before:before] = moving

    # Insertions left to right: everything before a run is final by then, so its target index
    # is its position.
    present = len(arrangement)
    index = 0
    while index < len(target):
        if layout.kept[index]:
            index += 1
            continue
        end = index
        while end < len(target) and not layout.kept[end]:
            end += 1
        for offset in range(0, end - index, MAX_URIS):
            chunk = tuple(target[index + offset : min(end, index + offset + MAX_URIS)])
            position = index + offset
            ops.append(Add(chunk, None if position == present else position))
            present += len(chunk)
        index = end
    return ops
