"""Source options are checked by `spotify-runner check`: exit 2, every mistake at its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main

CONFIG = """\
spotify:
  client_id: abc
  client_secret: s3cr3t-value-777
  redirect_uri: http://127.0.0.1:8888/callback
state_dir: ./state
timezone: UTC
jobs:
  radio:
    job: playlist_updater
    schedule: {every: 15m}
    options:
      playlist: {name: Radio}
      sources:
        - feed:
            url: https://example.org/np.json
            format: json
            json: {items: "data.[", artist: artist}
        - feed:
            url: https://example.org/playlist
            format: html
            html: {row: "table[", artist: .artist, title: .song}
        - spinitron: {count: 500}
        - lastfm: {user: rj, api_key: k, kind: hated}
        - listenbrainz: {user: rj, min_ts: 5}
        - scrobbles: {user: rj}
      overrides:
        "Dr. John - Iko Iko": spotify:album:0123456789012345678901
"""


def test_bad_source_options_are_located_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["-c", "config.yaml", "check"])
    err = capsys.readouterr().err
    assert done.value.code == 2, err
    assert "Traceback" not in err
    where = "config.yaml:{}: jobs.radio.options.{}"
    expected = [
        (
            where.format("17:27", "sources.0.feed.json.items"),
            "not a valid JMESPath expression: 'data.[' ends too soon",
        ),
        (where.format("21:25", "sources.1.feed.html.row"), "not a valid CSS selector: 'table['"),
        (where.format("22:22", "sources.2.spinitron.api_key"), "Field required"),
        (where.format("22:30", "sources.2.spinitron.count"), "less than or equal to 200"),
        (where.format("23:48", "sources.3.lastfm.kind"), "'recent', 'loved' or 'top'"),
        (where.format("24:44", "sources.4.listenbrainz.min_ts"), "unknown option (allowed: "),
        (where.format("25:11", "sources.5"), "unknown source 'scrobbles': expected one of "),
        (where.format("27:31", "overrides.Dr. John - Iko Iko"), "expected a track"),
    ]
    lines = err.strip().splitlines()
    for prefix, message in expected:
        assert any(line.startswith(prefix) and message in line for line in lines), (prefix, err)
