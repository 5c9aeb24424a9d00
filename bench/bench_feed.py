"""Benchmark: what a hostile feed costs the sources' HTTP (`make bench`).

Three bodies, streamed by a local server that never holds them whole:

- a 2 GiB plain body with no Content-Length (close-delimited),
- a gzip bomb: 1 GiB of newlines that compresses to about 1 MiB,
- a 9 MiB feed of "Artist - Title" lines (within the 10 MiB cap), read and split into lines.

For each: how it ended, the time, and the growth of the process's peak RSS (a high-water mark,
so a later body shows only what it adds beyond the earlier ones). Goal: the first two refused at
the 10 MiB cap with a one-line error, peak RSS growing by tens of MiB, not by the body's size.
Run: .venv/bin/python bench/bench_feed.py
"""

from __future__ import annotations

import http.server
import resource
import threading
import time
import zlib
from collections.abc import Iterator

from jobs.playlist_updater.sources.formats import split_lines
from jobs.playlist_updater.sources.http import Http
from runner.errors import RunnerError

CHUNK = 1024 * 1024


def plain(total: int) -> Iterator[bytes]:
    line = b"Some Artist - Some Title That Goes On\n" * (CHUNK // 38)
    sent = 0
    while sent < total:
        piece = line[: total - sent]
        yield piece
        sent += len(piece)


def bomb(total: int) -> Iterator[bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = b"\n" * CHUNK
    for _ in range(total // CHUNK):
        out = packer.compress(block)
        if out:
            yield out
    yield packer.flush()


BODIES = {
    "2 GiB plain, no Content-Length": (lambda: plain(2 * 1024**3), {}),
    "gzip bomb, 1 GiB decoded": (lambda: bomb(1024**3), {"Content-Encoding": "gzip"}),
    "9 MiB feed of lines": (lambda: plain(9 * 1024**2), {}),
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close-delimited: no Content-Length needed

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        make, headers = BODIES[self.server.bodies[self.path]]  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for chunk in make():
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: the point

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.bodies = {f"/{n}": name for n, name in enumerate(BODIES)}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print("feed bodies through the sources' HTTP (cap 10 MiB decoded)")
    try:
        for n, name in enumerate(BODIES):
            before = peak_mib()
            start = time.perf_counter()
            client = Http()
            try:
                response = client.get(f"{base}/{n}", what=f"feed {base}/{n}")
                lines, _ = split_lines(response.text())
                ended = f"read, {len(response.body) / CHUNK:.1f} MiB, {len(lines)} lines"
            except RunnerError as exc:
                ended = f"refused: {exc}"
            finally:
                client.close()
            took = time.perf_counter() - start
            grew = peak_mib() - before
            print(f"  {name}: {ended}")
            print(f"    {took:.2f} s, peak RSS +{grew:.0f} MiB")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
