"""Match "Artist - Title" lines to Spotify tracks, or to nothing rather than a wrong track.

A line is searched with `search_queries` (a field-filtered query first, then free text; Spotify
answers at most 10 results a search), and the results are scored by `score`: title similarity
times artist similarity, both on normalised text, times a penalty when one side is a different
version (live, acoustic, remix, ...) and the other is not. `best_match` keeps the best candidate
at or above the threshold.

Normalisation folds case, accents and punctuation, drops featured artists and version notes
such as "(Remastered 2011)", "- Live", "[Explicit]", and treats "&" as "and". Version notes are
kept aside as tags so that a live recording loses to the studio one when the line does not ask
for it, yet is still accepted when nothing better was found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher

from jobs.playlist_updater.candidate import Candidate

DEFAULT_THRESHOLD = 0.85

# Version notes and how much a mismatch costs. A different performance (live, acoustic, remix,
# ...) costs enough to lose to the right one but, on its own, not enough to fall below the
# threshold; a mastering or edit note only breaks ties.
_TAG_PENALTIES: dict[str, float] = {
    "live": 0.1,
    "acoustic": 0.1,
    "demo": 0.1,
    "instrumental": 0.2,
    "karaoke": 0.5,
    "remix": 0.2,
    "cover": 0.2,
    "remaster": 0.01,
    "edit": 0.01,
    "mono": 0.01,
    "stereo": 0.01,
    "explicit": 0.0,
    "clean": 0.01,
    "version": 0.01,
}

# Words that make a bracketed or dashed note a version note, mapped to their tag.
_TAG_WORDS: dict[str, str] = {
    "live": "live",
    "acoustic": "acoustic",
    "unplugged": "acoustic",
    "demo": "demo",
    "instrumental": "instrumental",
    "karaoke": "karaoke",
    "remix": "remix",
    "remixed": "remix",
    "mix": "version",  # "Original Mix", "Extended Mix": versions, not remixes
    "cover": "cover",
    "remaster": "remaster",
    "remastered": "remaster",
    "remasterizado": "remaster",
    "edit": "edit",
    "mono": "mono",
    "stereo": "stereo",
    "explicit": "explicit",
    "clean": "clean",
    "version": "version",
    "versao": "version",
    "deluxe": "version",
    "bonus": "version",
    "anniversary": "version",
    "mixed": "version",
}
_FEATURING = re.compile(r"^(feat|ft|featuring|with|prod)\b")
_SEGMENT = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
_DASH = re.compile(r"\s+[-\u2013\u2014]\s+")
_FEAT_SPLIT = re.compile(r"\s+(?:feat|ft|featuring)\b\.?\s*", re.IGNORECASE)
_ARTIST_SPLIT = re.compile(r"\s*(?:,|;|&|\+|\s(?:and|x|vs\.?|with)\s)\s*", re.IGNORECASE)


def _fold(text: str) -> str:
    """Lowercase, strip accents, "&" to "and", punctuation to spaces, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    # Apostrophes join ("don't" is "dont"); other punctuation separates ("ac/dc" is "ac dc").
    text = re.sub(r"['\u2018\u2019`\u00b4]", "", text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def _note_tags(note: str) -> set[str] | None:
    """Tags of a version note, an empty set for a featured-artist note, None for neither."""
    folded = _fold(note)
    if _FEATURING.match(folded):
        return set()
    tags = {_TAG_WORDS[word] for word in folded.split() if word in _TAG_WORDS}
    if folded.startswith("from "):  # "From the Motion Picture ..."
        tags.add("version")
    return tags or None


def _split_title(title: str) -> tuple[str, frozenset[str]]:
    """The title's core (folded) and the tags of the version notes stripped from it."""
    tags: set[str] = set()

    def bracket(match: re.Match[str]) -> str:
        note = match.group(1) if match.group(1) is not None else match.group(2)
        found = _note_tags(note)
        if found is None:
            return f" {note} "  # "(I Can't Get No) Satisfaction": part of the title
        tags.update(found)
        return " "

    text = _SEGMENT.sub(bracket, title)
    # Spotify writes notes after " - ": "Song - 2011 Remaster", "Song - Live at Wembley".
    parts = _DASH.split(text)
    while len(parts) > 1:
        found = _note_tags(parts[-1])
        if found is None:
            break
        tags.update(found)
        parts.pop()
    text = " ".join(parts)
    text = _FEAT_SPLIT.split(text)[0]  # "Song feat. Someone" without brackets
    return _fold(text), frozenset(tags)


def normalise_title(s: str) -> str:
    """A title folded for comparison, without featured artists and version notes.

    >>> normalise_title("Héroes (feat. X) - 2011 Remaster")
    'heroes'
    """
    return _split_title(s)[0]


def _strip_the(name: str) -> str:
    if name.startswith("the "):
        return name[4:]
    if name.endswith(" the"):  # "Beatles, The"
        return name[:-4]
    return name


def normalise_artist(s: str) -> str:
    """An artist credit folded for comparison: no leading "The", "&" as "and", no featured artists.

    >>> normalise_artist("The Beatles feat. Billy Preston")
    'beatles'
    """
    return _strip_the(_fold(_FEAT_SPLIT.split(s)[0]))


def split_artists(s: str) -> list[str]:
    """Every artist named in a credit, normalised: "A feat. B & C" gives ["a", "b", "c"].

    The whole credit comes first as well when it names more than one, since "&" may be part of
    one name ("Simon & Garfunkel") as often as it joins two.
    """
    names: list[str] = []
    for part in _FEAT_SPLIT.split(s):
        names.extend(piece for piece in _ARTIST_SPLIT.split(part) if piece.strip())
    folded = [_strip_the(_fold(name)) for name in names]
    return [name for name in dict.fromkeys(folded) if name]


def parse_line(line: str) -> tuple[str, str] | None:
    """Split "Artist - Title" (hyphen with spaces, en dash or em dash) into (artist, title).

    Returns None for a blank line, a comment (`#`), or a line without a separator or with an
    empty side. The first separator splits, so "A - Song - Live" has the title "Song - Live".
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    match = re.search(r"\s+-\s+|\s*[\u2013\u2014]\s*", text)
    if match is None:
        return None
    artist = text[: match.start()].strip()
    title = text[match.end() :].strip().strip("\"'\u201c\u201d").strip()
    if not artist or not title:
        return None
    return artist, title


def _query_text(text: str) -> str:
    # A double quote would end the field filter early.
    return " ".join(text.replace('"', " ").split())


def search_queries(artist: str, title: str) -> list[str]:
    """Queries to try in order: `track:"..." artist:"..."`, then free text.

    Version notes and featured artists are left out, since a field filter with them misses
    tracks that Spotify writes differently; the scoring tells versions apart afterwards.
    """
    core = _query_text(_clean_title_for_query(title))
    main_artist = _query_text(_FEAT_SPLIT.split(artist)[0])
    queries = [f'track:"{core}" artist:"{main_artist}"', f"{main_artist} {core}"]
    return [query for query in dict.fromkeys(queries) if query.strip()]


def _clean_title_for_query(title: str) -> str:
    """The title as written (case and accents kept), minus version and featuring notes."""

    def bracket(match: re.Match[str]) -> str:
        note = match.group(1) if match.group(1) is not None else match.group(2)
        return " " if _note_tags(note) is not None else f" {note} "

    parts = _DASH.split(_SEGMENT.sub(bracket, title))
    while len(parts) > 1 and _note_tags(parts[-1]) is not None:
        parts.pop()
    return _FEAT_SPLIT.split(" ".join(parts))[0]


def _similarity(a: str, b: str) -> float:
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return 1.0
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _artist_similarity(artist: str, candidate_artists: Sequence[str]) -> float:
    if not candidate_artists:
        return 0.0
    # The credit as a whole: "Simon & Garfunkel" against one artist of that name, or
    # "Beyoncé & JAY-Z" against the two of them.
    whole = max(
        _similarity(normalise_artist(artist), normalise_artist(" & ".join(candidate_artists))),
        _similarity(normalise_artist(artist), normalise_artist(candidate_artists[0])),
    )
    wanted = split_artists(artist)
    offered = [name for credit in candidate_artists for name in split_artists(credit)]
    if not wanted or not offered:
        return whole
    main = max(_similarity(wanted[0], name) for name in offered)
    if len(wanted) > 1:
        # A featured artist the result does not list costs a little: Spotify often credits
        # them in the title only.
        others = [max(_similarity(name, o) for o in offered) for name in wanted[1:]]
        main *= 0.9 + 0.1 * (sum(others) / len(others))
    return max(whole, main)


def score(artist: str, title: str, candidate_name: str, candidate_artists: Sequence[str]) -> float:
    """How surely a track is the one a line names, from 0 (not it) to 1 (certainly it).

    Args:
        artist: the artist as the line wrote it.
        title: the title as the line wrote it.
        candidate_name: the track's name on Spotify.
        candidate_artists: the track's artists on Spotify, main artist first.
    """
    wanted_title, wanted_tags = _split_title(title)
    offered_title, offered_tags = _split_title(candidate_name)
    result = _similarity(wanted_title, offered_title) * _artist_similarity(
        artist, candidate_artists
    )
    for tag in wanted_tags ^ offered_tags:
        result *= 1.0 - _TAG_PENALTIES.get(tag, 0.0)
    return max(0.0, min(1.0, result))


def rank(artist: str, title: str, candidates: Sequence[Candidate]) -> list[tuple[float, Candidate]]:
    """Candidates with their scores, best first; equal scores keep Spotify's order."""
    scored = [(score(artist, title, c.name, c.artists), c) for c in candidates]
    return sorted(scored, key=lambda pair: -pair[0])


def best_match(
    artist: str,
    title: str,
    candidates: Sequence[Candidate],
    threshold: float = DEFAULT_THRESHOLD,
) -> Candidate | None:
    """The best-scoring candidate at or above `threshold`, or None rather than a wrong track."""
    ranked = rank(artist, title, candidates)
    if ranked and ranked[0][0] >= threshold:
        return ranked[0][1]
    return None
