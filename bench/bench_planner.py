"""Benchmark: the playlist planner alone, on 10,000-track playlists (`make bench`).

For typical changes: how many write requests its plan takes against a full replace, and how
long `plan()` takes to compute (median of 5). Every plan is checked with `apply()`.
Run: .venv/bin/python bench/bench_planner.py
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from jobs.playlist_updater.planner import apply, plan, replace_plan

SIZE = 10_000
REPEAT = 5


def uris(prefix: str, n: int) -> list[str]:
    return [f"spotify:track:{prefix}{i:018d}" for i in range(n)]


def cases() -> dict[str, tuple[list[str], list[str]]]:
    rng = random.Random(1)
    current = uris("a", SIZE)
    new = uris("b", 100)
    replaced = list(current)
    for index, uri in zip(rng.sample(range(SIZE), 100), new, strict=True):
        replaced[index] = uri
    moved = [current[5000], *current[:5000], *current[5001:]]
    played_again = [current[700], *new[:99], *[u for u in current if u != current[700]]][:SIZE]
    gone = set(rng.sample(range(SIZE), 100))
    deleted = [u for i, u in enumerate(current) if i not in gone]
    shuffled = rng.sample(current, SIZE)
    return {
        "100 new at top, 100 trimmed at bottom": (current, [*new, *current[:-100]]),
        "100 random replacements": (current, replaced),
        "one track moved to the top": (current, moved),
        "played again + 99 new at top, trimmed": (current, played_again),
        "100 random deletions": (current, deleted),
        "unchanged": (current, list(current)),
        "fully shuffled": (current, shuffled),
    }


def median_seconds(action: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"planner on {SIZE:,}-track playlists (median of {REPEAT})\n")
    print("| case | plan requests | full replace | plan() time |")
    print("|---|--:|--:|--:|")
    for name, (current, target) in cases().items():
        result = plan(current, target)
        assert apply(current, result.ops) == target, name
        seconds = median_seconds(lambda c=current, t=target: plan(c, t))
        replace = replace_plan(target).requests
        print(f"| {name} | {result.requests} | {replace} | {seconds * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
