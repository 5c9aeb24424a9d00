"""Benchmark: matching "Artist - Title" lines on a catalog full of traps (`make bench`).

The embedded fake Spotify holds, for each song, the recording a radio line means, and around it
the tracks a careless matcher takes instead: live, demo, remix, acoustic, instrumental and
alternate versions by the same artist, karaoke tracks and tribute bands that carry the artist's
name, covers of the same title, a song of the same artist whose title differs by one word, and
an artist whose name contains the one asked for. The decoys are added first, so the fake's
search (which ranks ties by age, as Spotify ranks by popularity) puts them on top.

Three live albums name their tracks plainly ("MTV Unplugged in New York").

The lines are what radio sites print: the plain title, the title with a neutral note that the
catalog lacks or writes otherwise, a version that exists, a version that does not (the right
answer is no track), songs that are not on Spotify at all, and messy spelling.

Each line goes through the job's own resolver (real spotipy, real HTTP, the fake's search).
Precision: of the lines matched, how many got the right track (goal 1.00: never a wrong one).
Recall: of the lines whose track exists, how many got it (goal at least 0.97).
Run: .venv/bin/python bench/bench_matching.py
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import requests
import spotipy

from jobs.playlist_updater.resolve import Resolver
from jobs.playlist_updater.sources import Play
from runner.context import JobContext
from runner.testing import FakeSpotify

PRECISION_GOAL = 1.00
RECALL_GOAL = 0.97


@dataclass(frozen=True)
class Song:
    """A song, how the catalog writes its studio recording, and the versions it also holds."""

    artist: str
    title: str
    studio: str | None = None  # the track name of the right recording ("" when not on Spotify)
    versions: tuple[str, ...] = ()  # notes of other versions by the same artist, e.g. "Live"
    cover_by: str | None = None  # another artist's recording of the same title
    near_title: str | None = None  # a different song of the same artist, one word apart
    near_artist: str | None = None  # an artist whose name contains this one's
    live_album: str | None = None  # a live album that names its tracks plainly


SONGS = [
    Song(
        "The Meters",
        "Hey Pocky A-Way",
        versions=("Alternate Mix", "Live at the Warehouse"),
        live_album="Live on the Queen Mary",
    ),
    Song("Irma Thomas", "Ruler of My Heart", versions=("Live at Tipitina's 1989",)),
    Song(
        "Queen",
        "Somebody to Love",
        "Somebody To Love - Remastered 2011",
        versions=("Live at Wembley Stadium", "Demo"),
        near_artist="Queen Latifah",
    ),
    Song("Leonard Cohen", "Hallelujah", cover_by="Jeff Buckley", versions=("Live in London",)),
    Song(
        "The Beatles",
        "Let It Be",
        "Let It Be - Remastered 2009",
        versions=("Take 28", "Naked Version"),
    ),
    Song("David Bowie", "Heroes", '"Heroes" - 2017 Remaster', versions=("Live",)),
    Song("Nirvana", "About a Girl", versions=("Demo",), live_album="MTV Unplugged in New York"),
    Song("Fleetwood Mac", "Dreams", "Dreams - 2004 Remaster", versions=("Take 2", "Demo")),
    Song("The Weeknd", "Blinding Lights", versions=("Chromatics Remix", "Instrumental")),
    Song("Bee Gees", "Angel", near_title="Angels"),
    Song("Blur", "Song 2", "Song 2 - 2012 Remaster", near_title="Song 3"),
    Song("Eric Clapton", "Layla", versions=("Acoustic", "Live")),
    Song("Dolly Parton", "Jolene", cover_by="The White Stripes", versions=("Live",)),
    Song("Otis Redding", "(Sittin' On) the Dock of the Bay", versions=("Take 1",)),
    Song(
        "The Rolling Stones",
        "(I Can't Get No) Satisfaction",
        "(I Can't Get No) Satisfaction - Mono Version",
        versions=("Live",),
    ),
    Song("Guns N' Roses", "Sweet Child O' Mine", versions=("Live in Tokyo 1992", "Instrumental")),
    Song("Calvin Harris & Dua Lipa", "One Kiss", versions=("Extended Mix", "Radio Edit")),
    Song("Beyoncé", "Halo", versions=("Acoustic", "Karaoke Version")),
    Song("Sigur Rós", "Hoppípolla", versions=("Live",)),
    Song(
        "Simon & Garfunkel",
        "The Boxer",
        versions=("Live at Central Park",),
        cover_by="Mumford & Sons",
    ),
    Song(
        "John Denver",
        "Take Me Home, Country Roads",
        "Take Me Home, Country Roads - Original Version",
    ),
    Song("Aretha Franklin", "Respect", versions=("Alternate Take",), cover_by="Otis Redding"),
    Song(
        "Prince",
        "Purple Rain",
        versions=("Live at Syracuse 1985", "Rehearsal"),
        live_album="Live at the Aladdin Las Vegas",
    ),
    Song("Marvin Gaye", "What's Going On", versions=("Detroit Mix", "Instrumental")),
    Song(
        "Kate Bush",
        "Running Up That Hill",
        "Running Up That Hill (A Deal With God) - 2018 Remaster",
        versions=('12" Mix',),
    ),
    Song("Amy Winehouse", "Back to Black", versions=("Demo", "Live at Shepherd's Bush Empire")),
    Song("Daft Punk", "One More Time", versions=("Short Radio Edit", "Interview")),
    Song("Radiohead", "Creep", versions=("Acoustic", "Live")),
    Song("Johnny Cash", "Hurt", cover_by="Nine Inch Nails"),
    Song("Nina Simone", "Feeling Good", versions=("Remix",)),
    Song("Sam Cooke", "A Change Is Gonna Come", "A Change Is Gonna Come - 2003 Mono"),
    Song("Stevie Wonder", "Superstition", "Superstition - Single Version", versions=("Live",)),
    Song("ABBA", "Dancing Queen", versions=("Demo",), cover_by="A*Teens"),
    Song("Michael Jackson", "Billie Jean", versions=("Demo", "Instrumental")),
    Song("Whitney Houston", "I Will Always Love You", cover_by="Dolly Parton"),
    Song("Bob Marley & The Wailers", "Redemption Song", versions=("Band Version", "Live")),
    Song("Joni Mitchell", "Both Sides Now", versions=("Live",)),
    Song(
        "Talking Heads",
        "Once in a Lifetime",
        "Once in a Lifetime - 2005 Remaster",
        versions=("Live",),
    ),
    Song(
        "The Band",
        "The Weight",
        "The Weight - Remastered 2000",
        versions=("Take 7",),
        near_artist="The Band of Heathens",
    ),
    Song(
        "Oasis",
        "Wonderwall",
        "Wonderwall - Remastered",
        versions=("Live at Knebworth",),
        cover_by="Ryan Adams",
    ),
    Song("Adele", "Someone Like You", versions=("Live at the Royal Albert Hall",)),
    Song("Portishead", "Glory Box", versions=("Live",)),
    Song("Dr. John", "Right Place Wrong Time", versions=("Live",)),
    Song("Professor Longhair", "Tipitina", versions=("Alternate Take", "Live")),
    Song("Allen Toussaint", "Southern Nights", cover_by="Glen Campbell"),
    Song("Hurray for the Riff Raff", "Pa'lante", versions=("Acoustic",)),
    # Not on Spotify: only their decoys are.
    Song("Little Freddie King", "Bywater Crawl", ""),
    Song("Aaron Neville", "Hercules (Unreleased Take)", ""),
    Song("The Wild Magnolias", "Handa Wanda", "", versions=("Live",)),
]

NEUTRAL_NOTES = ["(2011 Remaster)", "- Remastered", "(Mono)", "[Explicit]", "(Single Version)"]


def plain(song: Song) -> str:
    """The recording a plain line means: the catalog's studio name, or the title."""
    return song.studio or song.title


def build(fake: FakeSpotify) -> list[tuple[str, str | None]]:
    """Fills the catalog; returns (line, the right URI or None) pairs."""
    cases: list[tuple[str, str | None]] = []
    for index, song in enumerate(SONGS):
        main = song.artist.split(" & ")[0]
        versions: dict[str, str] = {}
        # Decoys first: the fake ranks ties by age, as Spotify ranks by popularity.
        fake.add_track(
            f"{song.title} (Originally Performed by {main}) [Karaoke Version]",
            ["Karaoke Hits Band"],
        )
        fake.add_track(song.title, [f"{main} Tribute Band"])
        fake.add_track(f"{song.title} - Instrumental Tribute", [f"The {main} Orchestra"])
        for note in song.versions:
            versions[note] = fake.add_track(f"{song.title} - {note}", song.artist.split(" & "))
        if song.cover_by:
            fake.add_track(song.title, [song.cover_by])
        if song.near_title:
            fake.add_track(song.near_title, [song.artist])
        if song.near_artist:
            fake.add_track(song.title, [song.near_artist])
        if song.live_album:
            live = fake.add_track(song.title, [song.artist], album=song.live_album)
            if not any(note.startswith("Live") for note in song.versions):
                versions["Live"] = live  # the only live recording: what "(Live)" means
        right = None if song.studio == "" else fake.add_track(plain(song), song.artist.split(" & "))

        cases.append((f"{song.artist} - {song.title}", right))
        cases.append((f"{song.artist} - {song.title} {NEUTRAL_NOTES[index % 5]}", right))
        for note, uri in versions.items():
            cases.append((f"{song.artist} - {song.title} ({note})", uri))
        # A version the catalog does not hold: the right answer is no track.
        missing = "Demo" if "Demo" not in song.versions else "Acoustic"
        if missing not in song.versions:
            cases.append((f"{song.artist} - {song.title} ({missing})", None))
    cases.extend(messy(fake))
    return cases


def messy(fake: FakeSpotify) -> list[tuple[str, str | None]]:
    """Lines as radio sites mangle them, against tracks the catalog writes properly."""
    tracks = {
        "beyonce": fake.add_track("Crazy In Love (feat. Jay-Z)", ["Beyoncé", "JAY-Z"]),
        "gnr": fake.add_track("Paradise City", ["Guns N' Roses"]),
        "stones": fake.add_track("Paint It, Black", ["The Rolling Stones"]),
        "ac": fake.add_track("Highway to Hell", ["AC/DC"]),
        "bohemian": fake.add_track("Bohemian Rhapsody - Remastered 2011", ["Queen"]),
        "rock": fake.add_track("Rock and Roll - Remaster", ["Led Zeppelin"]),
    }
    fake.add_track("Crazy In Love - Remix", ["Beyoncé"])
    tracks["live aid"] = fake.add_track("Bohemian Rhapsody - Live Aid", ["Queen"])
    return [
        ("BEYONCE FT. JAY Z – Crazy in Love [Explicit]", tracks["beyonce"]),
        ("Beyonce & Jay-Z - Crazy In Love", tracks["beyonce"]),
        ("Guns n Roses - Paradise City", tracks["gnr"]),
        ("Rolling Stones - Paint It Black", tracks["stones"]),
        ("ACDC - Highway To Hell", tracks["ac"]),
        ("AC DC - Highway to Hell", tracks["ac"]),
        ("Queen - Bohemian Rapsody", tracks["bohemian"]),
        ("Queen - Bohemian Rhapsody (Live)", tracks["live aid"]),
        ("Queen - Bohemian Rhapsody (Demo)", None),
        ("Led Zeppelin - Rock 'n' Roll", tracks["rock"]),
        ("Led Zeppelin - Rock & Roll (Remastered)", tracks["rock"]),
    ]


def main() -> int:
    with FakeSpotify() as fake, requests.Session() as session:
        cases = build(fake)
        client = spotipy.Spotify(
            auth=fake.issue_access_token(lifetime=3600.0), requests_session=session
        )
        client.prefix = fake.api_url + "/"
        ctx = JobContext("bench", client, None, logging.getLogger("bench"))
        resolver = Resolver(ctx, {}, lambda uri: None, lambda candidate: None)
        plays = []
        for line, _ in cases:
            artist, title = line.replace("–", " - ").split(" - ", 1)
            plays.append(Play(artist=artist.strip(), title=title.strip(), text=line))
        resolved = resolver.resolve(plays)

    matched = right = exists = 0
    wrong: list[str] = []
    missed: list[str] = []
    for (line, expected), found in zip(cases, resolved.tracks, strict=True):
        exists += expected is not None
        if found is None:
            if expected is not None:
                missed.append(line)
            continue
        matched += 1
        if found.uri == expected:
            right += 1
        else:
            wrong.append(f"{line} -> {found.artists[0]} - {found.name}")
    precision = right / matched if matched else 1.0
    recall = right / exists if exists else 1.0
    print(f"matching: {len(cases)} lines on a catalog of {len(fake.tracks)} tracks with decoys")
    print(f"({exists} lines whose track exists, {len(cases) - exists} that must match nothing;")
    print(f" {resolved.searches} search requests)\n")
    print("| measure | value | goal |")
    print("|---|--:|--:|")
    print(f"| precision (matched lines, right track) | {precision:.2f} | {PRECISION_GOAL:.2f} |")
    print(f"| recall (existing tracks, found) | {recall:.2f} | >= {RECALL_GOAL:.2f} |")
    for title, lines in (("wrong track", wrong), ("not found", missed)):
        for line in lines:
            print(f"  {title}: {line}")
    met = precision >= PRECISION_GOAL and recall >= RECALL_GOAL
    print(f"\n{'goals met' if met else 'GOALS NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
