"""The playlist updater: declarative playlist automation in the fewest API calls.

One run: read the sources (`gather`: one module per source in `sources/`, plugins through the entry
point group `spotify_runner.sources`; plays resolved to tracks by `resolve`), find the playlist
(`playlist`), compute the list it should hold (`target.build_target`), and write only the
difference (`planner.plan`). When Spotify still reports the `snapshot_id` the job wrote last, and
the item total and first page that the same request returns agree with what it wrote, its items are
not read again (a snapshot answered by the job's own write may include another client's edit, so it
is never trusted alone); when the target equals that too, the run makes no write at all.

The parts that decide *what* to write are pure and tested without a network:

- `target`: the list the playlist should hold (replace or append, rolling window, dedupe,
  excludes, the "played again" case, an empty source that must not wipe the playlist).
- `planner`: the fewest Spotify write requests (DELETE, POST, reorder PUT, replace PUT) that turn
  the playlist's current items into that list, plus `apply`, an exact simulation of those requests.
- `matching`: "Artist - Title" lines turned into search queries and scored against the results,
  so that a line is matched to the right track or to nothing.

Example (config.yaml):

    radio:
      job: playlist_updater
      schedule: {every: 15m}
      options:
        playlist: {name: Radio plays}
        sources: [{feed: {file: plays.txt}}]
        mode: append
        max_tracks: 100
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from jobs.playlist_updater import planner
from jobs.playlist_updater.candidate import Candidate, candidate_from_track, label
from jobs.playlist_updater.gather import Gatherer, describe
from jobs.playlist_updater.matching import normalise_artist
from jobs.playlist_updater.options import Exclude, Options
from jobs.playlist_updater.playlist import Playlists, compact
from jobs.playlist_updater.target import build_target
from runner.context import JobContext

__all__ = ["SCOPES", "Options", "run"]

# Static, so that `spotify-runner auth` asks once for everything any source may need.
SCOPES: list[str] = [
    "playlist-read-private",
    "playlist-read-collaborative",
    "playlist-modify-private",
    "playlist-modify-public",
    "user-library-read",
    "user-read-recently-played",
    "user-top-read",
]

SHOWN = 5
"""Tracks of each kind a dry run names before "and N more"."""


def _exclusion(exclude: Exclude, uris: set[str]) -> Callable[[Candidate], bool] | None:
    names = {normalise_artist(a) for a in exclude.artists if not a.startswith("spotify:")}
    ids = {a.rsplit(":", 1)[-1] for a in exclude.artists if a.startswith("spotify:")}
    if not (uris or names or ids or exclude.explicit):
        return None

    def excluded(candidate: Candidate) -> bool:
        if candidate.uri in uris or (exclude.explicit and candidate.explicit):
            return True
        if ids and ids.intersection(candidate.artist_ids):
            return True
        return bool(names) and any(normalise_artist(a) in names for a in candidate.artists)

    return excluded


def run(ctx: JobContext) -> str:
    """Brings the playlist up to date with its sources; returns `+A -R ~M moved, ...`."""
    options: Options = ctx.options
    playlists = Playlists(ctx, options.playlist)
    # What an earlier attempt's write did is settled before the sources are read: if it landed,
    # the feed lines it added count as read.
    look = playlists.settle(playlists.look()) if playlists.pending else None
    gatherer = Gatherer(ctx, options)
    gathered = gatherer.gather()
    if gathered.unmatched:
        ctx.log.warning(
            "%d line(s) matched no track: %s",
            len(gathered.unmatched),
            "; ".join(_unmatched(line, gathered.rejected) for line in gathered.unmatched),
        )
    excluded_uris = set(options.exclude.tracks)
    for playlist_id in options.exclude.playlists:
        found = gatherer.playlist_tracks(playlist_id, f"excluded playlist {playlist_id}")
        excluded_uris.update(candidate.uri for candidate in found)

    look = look or playlists.look()
    target, snapshot = look.target, look.snapshot
    current, details = playlists.current(look)

    incoming = gathered.tracks if options.mode == "replace" else gathered.log_order
    known = {candidate.uri: candidate for candidate in incoming}
    # Tracks excluded by name stay excluded when already in the playlist.
    known.update({uri: Candidate(uri) for uri in current if uri in excluded_uris})
    wanted = build_target(
        mode=options.mode,
        incoming=incoming,
        current=current if look.base is None else look.base,
        max_tracks=options.max_tracks,
        position=options.position,
        dedupe=options.dedupe,
        dedupe_by=options.dedupe_by,
        exclude=_exclusion(options.exclude, excluded_uris),
        known=known,
        allow_empty=options.allow_empty,
    )
    plan = planner.plan(current, wanted)
    summary = f"{plan.summary()}, {len(gathered.unmatched)} unmatched, {len(wanted)} tracks"
    notes = [note for note in (describe(gathered),) if note]
    if gathered.kept:
        notes.append(f"kept the last tracks of {', '.join(gathered.kept)} (nothing new or empty)")
    if target.fresh:
        verb = "would create" if ctx.dry_run else "created"
        notes.append(f"{verb} playlist {target.label}")
    if not incoming and options.mode == "replace" and current and not options.allow_empty:
        notes.append("the sources gave no tracks: playlist left as it was")

    if ctx.dry_run:
        listing = _listing(ctx, gatherer, current, wanted, gathered.unmatched, [details, known])
        ctx.log.info("dry run: %s; %s", summary, listing)
        return "; ".join([summary, *notes, listing])

    if plan.ops:
        snapshot = playlists.write(
            target,
            plan.ops,
            snapshot,
            current=current,
            after=wanted,
            adds=planner.changes(current, wanted).added,
            then={"sources": gathered.states},
        )
        ctx.log.info("%s: %d write request(s) for %s", target.label, plan.requests, plan.summary())
    ctx.state.pop("pending", None)
    ctx.state["written"] = {"playlist": target.id, "snapshot": snapshot, "items": compact(wanted)}
    gatherer.save(gathered)
    return "; ".join([summary, *notes])


def _unmatched(line: str, rejected: dict[str, tuple[str, float, str]]) -> str:
    """A line that matched nothing, with the candidate that came closest and why it was not it.

    The candidate's URI is there to copy into `overrides` when it was right after all.
    """
    if line not in rejected:
        return line
    best, score, why = rejected[line]
    return f"{line} (closest: {best}, score {score:.2f}: {why})"


def _listing(
    ctx: JobContext,
    gatherer: Gatherer,
    current: list[str],
    wanted: list[str],
    unmatched: list[str],
    sources: Iterable[dict[str, Candidate]],
) -> str:
    """What a dry run would change, each kind named by "Artist - Title" (the first few)."""
    change = planner.changes(current, wanted)
    lookup: dict[str, Candidate] = {}
    for source in sources:
        lookup.update({uri: c for uri, c in source.items() if c.name})
    shown = {uri for uris in (change.added, change.removed, change.moved) for uri in uris[:SHOWN]}
    missing = [uri for uri in sorted(shown) if uri not in lookup and gatherer.known(uri) is None]
    # A few look-ups so a dry run can say what it would do in words; reads are allowed.
    for uri in missing:
        if uri.startswith("spotify:track:"):
            found = candidate_from_track(ctx.spotify.track(uri))
            if found is not None:
                lookup[uri] = found

    def names(uris: list[str]) -> str:
        text = ", ".join(label(lookup.get(uri) or gatherer.known(uri), uri) for uri in uris[:SHOWN])
        more = len(uris) - SHOWN
        return text + (f" and {more} more" if more > 0 else "")

    parts = []
    for title, uris in (
        ("add", change.added),
        ("remove", change.removed),
        ("move", change.moved),
        ("unmatched", unmatched),
    ):
        if uris:
            parts.append(f"{title}: {names(uris) if title != 'unmatched' else _lines(uris)}")
    return "; ".join(parts) if parts else "no changes"


def _lines(lines: list[str]) -> str:
    more = len(lines) - SHOWN
    return ", ".join(lines[:SHOWN]) + (f" and {more} more" if more > 0 else "")
