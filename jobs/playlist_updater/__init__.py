"""The playlist updater: declarative playlist automation in the fewest API calls.

The job is split so that everything that decides *what* to write is pure and tested without a
network:

- `target`: the list the playlist should hold (replace or append, rolling window, dedupe,
  excludes, the "played again" case, an empty source that must not wipe the playlist).
- `planner`: the fewest Spotify write requests (DELETE, POST, reorder PUT, replace PUT) that turn
  the playlist's current items into that list, plus `apply`, an exact simulation of those requests.
- `matching`: "Artist - Title" lines turned into search queries and scored against the results,
  so that a line is matched to the right track or to nothing.
"""
