"""Progress bars for long CLI work: drawn on a terminal (a real pseudo-terminal here), never in pipes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge_base import progress
from tests.test_feeds import FeedServer, item, respond, rss

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def env(tmp_path: Path, server: FeedServer) -> dict[str, str]:
    """A data dir with one source whose feed has a few items (embedding them takes a moment)."""
    items = [
        item(str(n), f"https://kota.example.id/{n}", f"Pengumuman kota nomor {n}", "Isi pengumuman. " * 40)
        for n in range(6)
    ]
    server.routes["/rss"] = respond(200, rss(*items), {"Content-Type": "application/rss+xml"})
    env = {**os.environ, "KABASHOAX_DATA_DIR": str(tmp_path / "var"), "HF_HUB_OFFLINE": "1", "TERM": "xterm"}
    env.pop("DATABASE_URL", None)
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "kabashoax.cli",
            "sources",
            "add",
            "kota",
            "--url",
            server.url("/rss"),
            "--outlet",
            "Kota",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    return env


def on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 600) -> tuple[int, str]:
    """Run a command with stdout and stderr on a pseudo-terminal; everything it drew, and its status."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    drawn = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the command ended and closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(60), drawn.decode(errors="replace")


def test_ingest_draws_progress_on_a_terminal_only(env: dict[str, str], server: FeedServer) -> None:
    code, drawn = on_a_terminal([sys.executable, "-m", "kabashoax.cli", "ingest", "--source", "kota"], env)
    assert code == 0, drawn[-2000:]
    assert "feeds" in drawn and "embedding passages" in drawn  # the steps, with their bars
    assert "0/1" in drawn or "1/1" in drawn

    more = [
        item(f"new{n}", f"https://kota.example.id/new{n}", f"Kabar baru {n}", "Isi baru. " * 40)
        for n in range(6)
    ]
    server.routes["/rss"] = respond(200, rss(*more), {"Content-Type": "application/rss+xml"})
    piped = subprocess.run(
        [sys.executable, "-m", "kabashoax.cli", "ingest", "--source", "kota"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert "6" in piped.stdout and "indexed" in piped.stdout  # the same work was done...
    assert (
        "embedding" not in piped.stdout + piped.stderr and "\x1b[?25l" not in piped.stderr
    )  # no bar, no cursor


def test_progress_is_off_for_json_and_pipes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not progress.wanted()  # pytest captures stdout: not a terminal
    assert not progress.wanted(as_json=True)
    with progress.shown(False), progress.task("nothing", 3):
        progress.advance()  # no reporter: a no-op
    assert list(progress.track([1, 2, 3], "counting")) == [1, 2, 3]
