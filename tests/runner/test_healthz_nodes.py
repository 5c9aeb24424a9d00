"""`/healthz` and the status page name the node and the active daemon: a real pair, and SQLite.

Two daemon processes on one real PostgreSQL database, each with its own HTTP listener: one
answers as the active node, the other as a healthy standby naming the active one. A SQLite
daemon has no pair and answers as the active node since it started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from daemon_world import World, every, free_port, wait_for

ACTIVE = "is now the active daemon"


def _health(port: int) -> tuple[int, dict[str, Any]]:
    answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    return answer.status_code, answer.json()


def _pair_config(world: World, url: str, node: str, port: int) -> Path:
    return world.write_node_config(
        node,
        {"tick": every("1h")},
        state={"url": url, "node": node},
        http={"listen": f"127.0.0.1:{port}"},
    )


def test_the_active_and_the_standby_say_so_on_healthz(world: World, postgres_url: str) -> None:
    ports = {"a": free_port(), "b": free_port()}
    first = world.daemon(config=_pair_config(world, postgres_url, "a", ports["a"]))
    first.wait_log(ACTIVE, timeout=30)
    second = world.daemon(config=_pair_config(world, postgres_url, "b", ports["b"]))
    second.wait_log("serving /metrics and /healthz", timeout=30)

    code, active = _health(ports["a"])
    assert code == 200
    assert active["status"] == "ok"
    assert active["node"] == "a"
    assert active["role"] == "active"
    assert active["active"]["node"] == "a"
    since = active["active"]["since"]

    wait_for(lambda: _health(ports["b"])[1].get("status") == "standby", what="b standing by")
    code, standby = _health(ports["b"])
    assert code == 200
    assert standby["node"] == "b"
    assert standby["role"] == "standby"
    assert standby["active"] == active["active"]  # the same facts `jobs --json` shows
    assert "ticks" in standby  # the liveness detail is still there

    jobs = world.cli("jobs", "--json", config=world.dir / "config-b.yaml")
    assert jobs.returncode == 0, jobs.stderr
    assert f'"since": "{since}"' in jobs.stdout

    page = requests.get(f"http://127.0.0.1:{ports['b']}/", timeout=10)
    assert page.status_code == 200
    assert "This is node <strong>b</strong>" in page.text
    assert "standing by" in page.text
    assert "Active: node <strong>a</strong>" in page.text

    first.kill()
    second.wait_log(ACTIVE, timeout=20)
    code, took_over = _health(ports["b"])
    assert code == 200
    assert took_over["status"] == "ok"
    assert took_over["active"]["node"] == "b"
    assert took_over["active"]["since"] >= since


def test_a_sqlite_daemon_is_its_own_active_node(world: World) -> None:
    world.write_config({"tick": every("1h")}, state={"node": "solo"})
    daemon = world.daemon()
    daemon.wait_log("serving /metrics and /healthz", timeout=30)
    code, body = _health(world.http_port)
    assert code == 200
    assert body["status"] == "ok"
    assert body["node"] == "solo"
    assert body["role"] == "active"
    assert body["active"]["node"] == "solo"
    assert body["active"]["since"].startswith("20")
    assert "epoch" not in body["active"]
    page = requests.get(f"http://127.0.0.1:{world.http_port}/", timeout=10)
    assert "This is node <strong>solo</strong>" in page.text
    assert "the active daemon" in page.text
