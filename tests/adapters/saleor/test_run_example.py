"""``examples/saleor_app/run.py`` stops what it started.

The script is run for real (a copy of the example in a temporary folder, so its SQLite
file lands there), serves ``/health``, is stopped as a terminal or a process manager
stops it, and then nothing it started may still run or hold the port. Django's
development server starts a second process (its autoreloader's child, the one that
serves), so stopping only the first one is not enough.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups and /proc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Every living process started, directly or not, by ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_run_py_stops_the_development_server(tmp_path: Path, stop: int) -> None:
    example = tmp_path / "saleor_app"
    shutil.copytree(
        ROOT / "examples" / "saleor_app",
        example,
        ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"),
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMI_SALEOR", "DJANGO_"))}
    env.update(CMI_SALEOR_DEMO="1", DATABASE_URL="", PYTHONUNBUFFERED="1")
    log = (tmp_path / "run.log").open("wb")
    script = subprocess.Popen(
        [sys.executable, str(example / "run.py"), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not serving(port):
            assert script.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "run.py never served /health"
            time.sleep(0.3)
        started = descendants(script.pid)
        assert started, "runserver runs as a child of run.py"
        script.send_signal(stop)  # what Ctrl-C (SIGINT) or a process manager (SIGTERM) sends
        script.wait(timeout=30)
        deadline = time.monotonic() + 5
        while (port_taken(port) or any(alive(p) for p in started)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in started if alive(p)], "a server process outlived run.py"
        assert not port_taken(port), "the port is still served after run.py stopped"
    finally:
        for pid in started | descendants(script.pid):  # leave nothing behind, pass or fail
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if script.poll() is None:
            script.kill()
            script.wait()
        log.close()
