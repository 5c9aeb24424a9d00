"""Match "Artist - Title" lines to Spotify tracks, or to nothing rather than a wrong track.

A line is searched with `search_queries` (a field-filtered query first, then free text; Spotify
answers at most 10 results a search), and each result is judged by `judge`: title similarity
times artist similarity, both on normalised text, and the *versions* must agree. `best_match`
keeps the best candidate accepted; `best_rejected` says which came closest and why not, for the
unmatched report.

Versions. A bracketed or dashed note such as "(Live at Tipitina's 1989)", "- Alternate Mix" or
"[Demo]" names a version: live, demo, remix, alternate, acoustic, instrumental, edit,
interview, karaoke, cover, tribute, session, take, rehearsal and a few more (`VERSION_WORDS`).
A line and a track must name the same versions: a studio line never gets the live recording, and
a live line never gets the studio one, however alike the rest is. Neutral notes do not count:
remaster(ed), a year, single/album version, mono/stereo, explicit/clean, feat./ft./with, "from
the motion picture"; between tracks that agree they only break ties, the plainest first.

Titles are compared word by word: a spelling slip inside a long word is forgiven, a different
word is not ("Angel" is not "Angels", "Song 2" not "Song 3").

Misses are remembered for a while only (`MatchMemory`): a song not on Spotify yet is searched
again after an hour, then less and less often, at most a day apart; matches are kept.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from jobs.playlist_updater.candidate import Candidate

DEFAULT_THRESHOLD = 0.85

VERSION_WORDS: dict[str, str] = {
    "live": "live",
    "unplugged": "live",
    "concert": "live",
    "demo": "demo",
    "demos": "demo",
    "remix": "remix",
    "remixed": "remix",
    "rmx": "remix",
    "rework": "remix",
    "dub": "remix",
    "alternate": "alternate",
    "alternative": "alternate",
    "alt": "alternate",
    "acoustic": "acoustic",
    "instrumental": "instrumental",
    "edit": "edit",
    "edited": "edit",
    "radio": "edit",
    "interview": "interview",
    "commentary": "interview",
    "karaoke": "karaoke",
    "cover": "cover",
    "tribute": "tribute",
    "session": "session",
    "sessions": "session",
    "take": "take",
    "outtake": "take",
    "rehearsal": "rehearsal",
    "extended": "extended",
    "reprise": "reprise",
    "acapella": "a cappella",
    "cappella": "a cappella",
    "orchestral": "orchestral",
    "symphonic": "orchestral",
}
"""Words that make a note name a version, each mapped to the version it names."""

_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(originally performed by|in the style of|made famous by)\b"), "karaoke"),
)

NEUTRAL_WORDS = frozenset(
    [
        "remaster",
        "remastered",
        "remasterizado",
        "remasterised",
        "remastering",
        "digital",
        "digitally",
        "hd",
        "single",
        "album",
        "version",
        "versao",
        "mono",
        "stereo",
        "explicit",
        "clean",
        "deluxe",
        "bonus",
        "track",
        "edition",
        "anniversary",
        "expanded",
        "original",
        "mix",
        "mixed",
    ]
)
"""Words of notes that do not make another version (with a year, any number of them)."""

_TIE_BREAK = 0.01
"""What a neutral note costs: only enough that the plainer of two agreeing tracks wins."""

VERSION_MISMATCH = 0.5
"""Factor on the score of a track whose versions differ from the line's: always below any
threshold worth using, yet ordered, so the report can still say which came closest."""

MISS_FIRST = 3600.0
"""Seconds a line that matched nothing is not searched again, the first time."""

MISS_LONGEST = 86400.0
"""The most seconds between two searches of a line that keeps matching nothing."""


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
    text = re.sub(r"\bn\b", "and", text)  # "rock 'n' roll" is "rock and roll"
    return " ".join(text.split())


_CONNECTORS = frozenset(
    ["a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "the", "to", "version", "with"]
)
_YEAR = re.compile(r"(19|20)\d\d[s]?")
_NEUTRAL = "="
"""Prefix of a neutral note's tag ("=remaster"): kept for tie-breaks, not a version."""


def _note_tags(note: str) -> set[str] | None:
    """Tags of a note: versions, and neutral ones prefixed with "="; None when not a note.

    An empty set is a featured-artist note. A note is one when it names a version or is made of
    neutral words (a year, "Remastered", "Mono"...); anything else is part of the title, as in
    "(I Can't Get No) Satisfaction".
    """
    folded = _fold(note)
    if _FEATURING.match(folded):
        return set()
    if folded.startswith("from "):  # "From the Motion Picture ..."
        return {_NEUTRAL + "from"}
    words = folded.split()
    versions = {VERSION_WORDS[word] for word in words if word in VERSION_WORDS}
    versions.update(tag for pattern, tag in _PHRASES if pattern.search(folded))
    if "take" in versions and not (len(versions) > 1 or any(w.isdigit() for w in words)):
        versions.discard("take")  # "(Take Me Home)" is a title; "Take 2" is a take
    neutral = {_NEUTRAL + word for word in words if word in NEUTRAL_WORDS}
    if any(_YEAR.fullmatch(word) for word in words):
        neutral.add(_NEUTRAL + "year")
    unknown = [
        w
        for w in words
        if w not in VERSION_WORDS
        and w not in NEUTRAL_WORDS
        and w not in _CONNECTORS
        and not w.isdigit()
        and not _YEAR.fullmatch(w)
    ]
    if not versions and "mix" in words:
        numbers = [w for w in words if w.isdigit() and not _YEAR.fullmatch(w)]
        if unknown or numbers:
            versions.add("remix")  # "Chromatics Mix", '12" Mix': someone's, or a longer, mix
    if not versions and unknown and "version" in words:
        versions.add("version:" + " ".join(unknown))  # "Taylor's Version", "Piano Version"
    if not versions and not neutral:
        return None
    return versions | neutral


@dataclass(frozen=True)
class _Title:
    core: str
    versions: frozenset[str]
    neutral: frozenset[str]
    notes: str
    bare: str  # the core without a bracketed subtitle: "Running Up That Hill (A Deal With God)"


_NUMBERED = re.compile(r"\d|\b(part|pt|vol|no)\b")


def _strip_notes(title: str, subtitles: bool = False) -> tuple[str, list[str]]:
    """The title as written without its notes (nor, with `subtitles`, a bracketed subtitle
    other than a part number), and the notes.
    """
    notes: list[str] = []

    def bracket(match: re.Match[str]) -> str:
        note = match.group(1) if match.group(1) is not None else match.group(2)
        if _note_tags(note) is not None:
            notes.append(note)
            return " "
        if subtitles and _NUMBERED.search(_fold(note)) is None:
            return " "  # "Running Up That Hill (A Deal With God)"
        return f" {note} "  # "(I Can't Get No) Satisfaction": part of the title

    # Spotify writes notes after " - " too: "Song - 2011 Remaster", "Song - Live at Wembley".
    parts = _DASH.split(_SEGMENT.sub(bracket, title))
    while len(parts) > 1 and _note_tags(parts[-1]) is not None:
        notes.append(parts.pop())
    return _FEAT_SPLIT.split(" ".join(parts))[0], notes  # also "Song feat. Someone"


def _split_title(title: str) -> _Title:
    """The title's core (folded), and what its notes say."""
    text, notes = _strip_notes(title)
    tags: set[str] = set()
    for note in notes:
        tags.update(_note_tags(note) or ())
    versions = frozenset(t for t in tags if not t.startswith(_NEUTRAL))
    bare = _fold(_strip_notes(title, subtitles=True)[0])
    return _Title(_fold(text), versions, frozenset(tags - versions), _fold(" ".join(notes)), bare)


def normalise_title(s: str) -> str:
    """A title folded for comparison, without featured artists and version notes.

    >>> normalise_title("Héroes (feat. X) - 2011 Remaster")
    'heroes'
    """
    return _split_title(s).core


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
    """Queries to try in order: `track:"..." artist:"..."`, free text, then the title alone.

    Version notes and featured artists are left out of the field filter, since a filter with
    them misses tracks that Spotify writes differently; the judging tells versions apart
    afterwards. When the line names a version, a query with its words comes first, so that
    the version asked for is among the 10 results even when the song has many others.
    """
    core = _query_text(_clean_title_for_query(title))
    main_artist = _query_text(_FEAT_SPLIT.split(artist)[0])
    field = f'track:"{core}" artist:"{main_artist}"'
    words = sorted(
        {w for v in _split_title(title).versions if not v.startswith("version:") for w in v.split()}
    )
    queries = [f"{field} {' '.join(words)}"] if words else []
    # Last, the title alone, spelt plainly ("rock and roll"): for an artist a line writes
    # otherwise ("ACDC"); the judging checks the artist.
    queries += [field, f"{main_artist} {core}", f'track:"{_split_title(title).core}"']
    return [query for query in dict.fromkeys(queries) if query.strip()]


def _clean_title_for_query(title: str) -> str:
    """The title as written (case and accents kept), minus version and featuring notes."""
    return _strip_notes(title)[0]


def _similarity(a: str, b: str) -> float:
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return 1.0
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _same_word(a: str, b: str) -> bool:
    """Equal, or a spelling slip inside a long word; a plural or another number is not."""
    if a == b:
        return True
    if min(len(a), len(b)) < 5 or a.rstrip("s") == b.rstrip("s"):
        return False
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.8


def _title_similarity(a: str, b: str) -> float:
    """Like `_similarity`, but a word that differs (not a slip) costs a fifth."""
    ratio = _similarity(a, b)
    if ratio == 1.0:
        return ratio
    words_a, words_b = a.split(), b.split()
    if len(words_a) != len(words_b) or not all(map(_same_word, words_a, words_b)):
        ratio *= 0.8
    return ratio


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


_ARTIST_VERSIONS = frozenset({"karaoke", "tribute", "cover", "covers"})


def _artist_versions(artists: Sequence[str]) -> set[str]:
    """Versions an artist credit names: "Karaoke Hits Band", "The Beatles Tribute Band"."""
    versions: set[str] = set()
    for credit in artists:
        folded = _fold(credit)
        versions.update(
            "cover" if w == "covers" else w for w in folded.split() if w in _ARTIST_VERSIONS
        )
        versions.update(tag for pattern, tag in _PHRASES if pattern.search(folded))
    return versions


_ALBUM_WORDS: dict[str, str] = {
    "unplugged": "live",
    "karaoke": "karaoke",
    "tribute": "tribute",
    "demos": "demo",
    "sessions": "session",
    "outtakes": "take",
    "rehearsals": "rehearsal",
    "remixes": "remix",
    "remixed": "remix",
    "instrumentals": "instrumental",
    "acoustic": "acoustic",
}
_LIVE_ALBUM = re.compile(r"\blive (at|in|from|on)\b|\bin concert\b")


def _album_versions(album: str) -> set[str]:
    """Versions an album's name gives its tracks: "Live at Leeds", "MTV Unplugged", "(Demos)"."""
    if not album:
        return set()
    folded = _fold(album)
    versions = {_ALBUM_WORDS[w] for w in folded.split() if w in _ALBUM_WORDS}
    if _LIVE_ALBUM.search(folded):
        versions.add("live")
    for note in _strip_notes(album)[1]:
        versions.update(t for t in _note_tags(note) or () if not t.startswith(_NEUTRAL))
    return versions


def _describe(versions: frozenset[str] | set[str]) -> str:
    if not versions:
        return "the plain recording"
    names = [f"'{v[8:]}' version" if v.startswith("version:") else v for v in sorted(versions)]
    return " and ".join(names)


@dataclass(frozen=True)
class Verdict:
    """How one candidate fares against a line.

    Attributes:
        candidate: the track.
        score: 0 (not it) to 1 (certainly it); a different version scores at most
            `VERSION_MISMATCH`.
        why: None when accepted, else why not, in words: "another version: ...", or which
            part scored low.
    """

    candidate: Candidate
    score: float
    why: str | None = None

    @property
    def accepted(self) -> bool:
        """Whether the candidate is the track the line names."""
        return self.why is None


def judge(
    artist: str, title: str, candidate: Candidate, threshold: float = DEFAULT_THRESHOLD
) -> Verdict:
    """Whether `candidate` is the track "artist - title" names, with its score and why not.

    Args:
        artist: the artist as the line wrote it.
        title: the title as the line wrote it.
        candidate: a track Spotify offered.
        threshold: the least score accepted.
    """
    wanted, offered = _split_title(title), _split_title(candidate.name)
    title_score = _title_similarity(wanted.core, offered.core)
    if wanted.bare != wanted.core or offered.bare != offered.core:
        title_score = max(title_score, 0.95 * _title_similarity(wanted.bare, offered.bare))
    artist_score = _artist_similarity(artist, candidate.artists)
    result = title_score * artist_score
    # Among tracks that agree, the plainest and the closest note first.
    result *= 1.0 - _TIE_BREAK * len(wanted.neutral ^ offered.neutral) / 4
    if wanted.notes != offered.notes:
        result *= 1.0 - _TIE_BREAK * (1.0 - _similarity(wanted.notes, offered.notes))
    asked = wanted.versions | _artist_versions([artist])
    found = offered.versions | _artist_versions(candidate.artists)
    if not offered.versions:
        # A live album names its tracks plainly; a track's own note says more than its album.
        found |= _album_versions(candidate.album)
    why = None
    if asked != found:
        result *= VERSION_MISMATCH
        why = (
            f"another version: the track is {_describe(found)}, "
            f"the line asks for {_describe(asked)}"
        )
    result = max(0.0, min(1.0, result))
    if why is None and result < threshold:
        low = [
            f"{part} {value:.2f}"
            for part, value in (("title", title_score), ("artist", artist_score))
            if value < 0.95
        ]
        why = f"score {result:.2f} below {threshold:.2f}" + (f" ({', '.join(low)})" if low else "")
    return Verdict(candidate, result, why)


def score(artist: str, title: str, candidate_name: str, candidate_artists: Sequence[str]) -> float:
    """How surely a track is the one a line names, from 0 (not it) to 1 (certainly it).

    Args:
        artist: the artist as the line wrote it.
        title: the title as the line wrote it.
        candidate_name: the track's name on Spotify.
        candidate_artists: the track's artists on Spotify, main artist first.
    """
    candidate = Candidate("", name=candidate_name, artists=tuple(candidate_artists))
    return judge(artist, title, candidate).score


def judge_all(
    artist: str, title: str, candidates: Sequence[Candidate], threshold: float = DEFAULT_THRESHOLD
) -> list[Verdict]:
    """Every candidate's verdict: accepted ones first, then by score; ties keep Spotify's order."""
    verdicts = [judge(artist, title, c, threshold) for c in candidates]
    return sorted(verdicts, key=lambda v: (not v.accepted, -v.score))


def rank(artist: str, title: str, candidates: Sequence[Candidate]) -> list[tuple[float, Candidate]]:
    """Candidates with their scores, accepted ones first, then best first."""
    return [(v.score, v.candidate) for v in judge_all(artist, title, candidates)]


def best_match(
    artist: str,
    title: str,
    candidates: Sequence[Candidate],
    threshold: float = DEFAULT_THRESHOLD,
) -> Candidate | None:
    """The best candidate accepted, or None rather than a wrong track."""
    verdicts = judge_all(artist, title, candidates, threshold)
    return verdicts[0].candidate if verdicts and verdicts[0].accepted else None


def best_rejected(
    artist: str,
    title: str,
    candidates: Sequence[Candidate],
    threshold: float = DEFAULT_THRESHOLD,
) -> Verdict | None:
    """The candidate that came closest when none was accepted, with its score and why not."""
    verdicts = judge_all(artist, title, candidates, threshold)
    if not verdicts or verdicts[0].accepted:
        return None
    return verdicts[0]


# -- what the job remembers --------------------------------------------------------------------


def now() -> float:
    """The clock `MatchMemory` reads (seconds since the epoch); tests move it."""
    return time.time()


class MatchMemory:
    """The match cache kept in `ctx.state`: a line's track URI, or when it last found nothing.

    A match is kept (until the least recently used are dropped beyond `size`); a miss only for
    `MISS_FIRST` seconds, doubling with each further miss up to `MISS_LONGEST`, so a song that
    reaches Spotify after it was first played is found within hours. A miss an older version
    stored (an empty string, no time) counts as expired.

    The interface is the mapping part the resolver uses: `in` (a live entry), `get` ("" for a
    miss), `put` ("" for a miss), `save`.

    Args:
        state: `ctx.state`.
        key: where in it.
        size: entries kept.
        clock: seconds since the epoch; `now` when None.
    """

    def __init__(
        self,
        state: MutableMapping[str, Any],
        key: str = "matches",
        size: int = 5_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        stored = state.get(key)
        self.data: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        self.state, self.key, self.size, self.clock = state, key, size, clock

    def _now(self) -> float:
        return self.clock() if self.clock is not None else now()

    def __contains__(self, key: str) -> bool:
        value = self.data.get(key)
        if isinstance(value, str):
            return bool(value)
        due = _miss_due(value)
        return due is not None and self._now() < due

    def get(self, key: str) -> str:
        """The URI matched, or "" for a miss; marked as recently used."""
        value = self.data.pop(key)
        self.data[key] = value
        return value if isinstance(value, str) else ""

    def put(self, key: str, uri: str) -> None:
        """Remembers a match (a URI) or a miss (""), dropping the least recently used."""
        previous = self.data.pop(key, None)
        if uri:
            self.data[key] = uri
        else:
            misses = previous[1] if _miss_due(previous) is not None else 0
            self.data[key] = [round(self._now()), int(misses) + 1]
        while len(self.data) > self.size:
            del self.data[next(iter(self.data))]

    def save(self) -> None:
        """Writes the cache back into the state (kept only if the run succeeds)."""
        self.state[self.key] = self.data


def _miss_due(value: Any) -> float | None:
    """When a stored miss `[searched_at, misses]` expires; None for anything else."""
    if not (isinstance(value, list) and len(value) == 2):
        return None
    at, misses = value
    if not isinstance(at, int | float) or not isinstance(misses, int) or misses < 1:
        return None
    return float(at) + float(min(MISS_LONGEST, MISS_FIRST * 2 ** min(misses - 1, 30)))
