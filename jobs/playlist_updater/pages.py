"""Concurrent reads: the pages after the first, searches and track look-ups, 4 at a time.

Each worker thread gets its own client from `ctx.client()` (one `requests.Session` per thread,
since a session is not thread-safe), so the transport's 401, 429 and deadline handling applies to
every request. The first error any worker meets stops the others before their next request and is
raised to the caller: a `RateLimited` from a long `Retry-After` ends the run at once instead of
letting the other workers keep knocking.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import spotipy

from runner.context import JobContext

K = TypeVar("K")
T = TypeVar("T")

MAX_WORKERS = 4
PAGE = 50  # Spotify's largest page for every paged read the job makes


def run_concurrently(
    ctx: JobContext,
    tasks: Sequence[K],
    work: Callable[[spotipy.Spotify, K], T],
    *,
    workers: int = MAX_WORKERS,
) -> list[T]:
    """`work(client, task)` for every task, at most `workers` at a time; results in task order.

    Raises:
        BaseException: the first error a worker met (the others stop before their next task).
    """
    if not tasks:
        return []
    if ctx.new_client is None or workers <= 1 or len(tasks) == 1:
        # No per-thread clients to be had: one session, one thread.
        return [work(ctx.spotify, task) for task in tasks]
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(tasks)):
        pending.put(index)
    results: dict[int, T] = {}
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()

    def worker() -> None:
        client = ctx.client()
        while not stop.is_set():
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            try:
                value = work(client, tasks[index])
            except BaseException as exc:  # handed to the caller, which re-raises it
                with lock:
                    errors.append(exc)
                stop.set()
                return
            with lock:
                results[index] = value

    threads = [
        threading.Thread(target=worker, name=f"{ctx.job_name}-read-{n}", daemon=True)
        for n in range(min(workers, len(tasks)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # Each request is bounded by the transport's timeout and the run's deadline.
        thread.join()
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(tasks))]


def read_rest(
    ctx: JobContext,
    first: Mapping[str, Any],
    fetch: Callable[[spotipy.Spotify, int, int], Mapping[str, Any]],
    *,
    limit: int | None = None,
) -> list[Any]:
    """Every item of a paged list, given its first page: the other pages are read concurrently.

    Args:
        ctx: the run's context.
        first: the first page (a Spotify paging object with `items` and `total`).
        fetch: reads the page at `(client, offset, limit)`.
        limit: how many items are wanted at most (all when None).

    Returns:
        The items, in order.
    """
    items = list(first.get("items") or [])
    total = int(first.get("total") or 0)
    wanted = total if limit is None else min(total, limit)
    if not items or len(items) >= wanted:
        return items[:wanted] if limit is not None else items
    offsets = list(range(len(items), wanted, PAGE))
    pages = run_concurrently(
        ctx, offsets, lambda client, offset: fetch(client, offset, min(PAGE, wanted - offset))
    )
    for page in pages:
        items.extend(page.get("items") or [])
    return items[:wanted]
