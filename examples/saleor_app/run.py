#!/usr/bin/env python
"""One command: apply migrations, then serve the app (``python examples/saleor_app/run.py``).

``--host`` / ``--port`` (default 127.0.0.1:8000). Settings come from the environment;
see README.md.

Stopping it (Ctrl-C, ``kill``, a closed terminal) stops what it started: Django's
development server runs in a process group of its own (its autoreloader starts a second
process, the one that serves), and the whole group is asked to stop (SIGTERM), then
killed if it has not stopped within :data:`GRACE` seconds. Without this, a SIGTERM ended
only this script and left the server serving on its port.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

MANAGE = Path(__file__).resolve().parent / "manage.py"
#: Seconds the server gets to stop after SIGTERM before it is killed.
GRACE = 10.0
_STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM] + (
    [signal.SIGHUP] if hasattr(signal, "SIGHUP") else []
)


class _StoppedError(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _StoppedError(signum)


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    """``signum`` to the child's whole process group (the child alone off POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(child.pid, signum)
        elif signum == signal.SIGTERM:
            child.terminate()
        else:
            child.kill()
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Stop the child's process group: SIGTERM, then SIGKILL after :data:`GRACE` s."""
    _signal_group(child, signal.SIGTERM)
    try:
        child.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(child, getattr(signal, "SIGKILL", signal.SIGTERM))
        child.wait()
    # the serving grandchild may outlive its parent: make sure the group is empty
    if os.name == "posix":
        _signal_group(child, signal.SIGKILL)


def run(command: list[str]) -> int:
    """Run ``command`` in its own process group; stop the group when this script is
    stopped or the command ends. Returns the command's exit code (128 + the signal's
    number when this script was stopped by one)."""
    child = subprocess.Popen(command, start_new_session=os.name == "posix")  # noqa: S603
    previous = {s: signal.signal(s, _raise_stopped) for s in _STOP_SIGNALS}
    try:
        return child.wait()
    except _StoppedError as stopped:
        return 128 + stopped.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stop(child)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    code = run([sys.executable, str(MANAGE), "migrate", "--noinput"])
    if code != 0:
        return code
    return run([sys.executable, str(MANAGE), "runserver", f"{args.host}:{args.port}"])


if __name__ == "__main__":
    sys.exit(main())
