"""What the endpoint benchmarks share: gunicorn, a free port, waiting for it, the load."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 60.0) -> None:
    """Return once ``url`` answers 200; RuntimeError after ``timeout`` seconds."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer {url}")


# -- the server -----------------------------------------------------------------------------


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--clients``, ``--workers``, ``--threads``, ``--worker-class``, ``--worker-connections``."""
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn's (gthread, sync)")
    parser.add_argument(
        "--worker-connections",
        type=int,
        help="per gthread worker; default: an equal share of the clients' connections",
    )


def describe(args: argparse.Namespace) -> str:
    """The server of :func:`gunicorn`, in words."""
    shape = f"{args.workers} workers x {args.threads} threads ({args.worker_class}"
    if args.worker_class == "gthread":
        shape += f", at most {connections(args)} connections each"
    return f"gunicorn {shape}), {os.cpu_count()} CPUs"


def connections(args: argparse.Namespace) -> int:
    """Connections a worker accepts at most.

    By default each worker's equal share of the clients: left to accept races, keep-alive
    connections spread unevenly over the workers and stay so for the whole run, and the
    busiest worker sets p99 (it about doubled, for every path).
    """
    if args.worker_connections is not None:
        return int(args.worker_connections)
    return -(-args.clients // args.workers)


def gunicorn(
    args: argparse.Namespace, application: str, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """gunicorn serving ``application`` (``module:name``) on 127.0.0.1:``port``."""
    return subprocess.Popen(  # noqa: S603 - our own command line
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--worker-connections",
            str(connections(args)),
            "--threads",
            str(args.threads),
            "--backlog",
            "1024",
            "--log-level",
            "warning",
            application,
        ],
        cwd=ROOT,
        env=env if env is not None else os.environ.copy(),
    )


# -- the load: many keep-alive connections on one event loop --------------------------------
#
# A client per thread with ``requests`` costs more CPU per request than a trivial Django
# view does; on a small machine it, not the server, then sets the pace, and every path
# looks about as fast as the trivial one. Raw HTTP/1.1 on asyncio costs a few tens of
# microseconds per request, so the server's own costs show.


@dataclass
class Load:
    """What one run measured: seconds, latencies of the good answers, bad answers."""

    seconds: float
    latencies: list[float]
    errors: int

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``th percentile latency of the good answers, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @classmethod
    def merged(cls, runs: list[Load]) -> Load:
        """Several runs as one: their time, latencies and errors added up."""
        return cls(
            sum(run.seconds for run in runs),
            [latency for run in runs for latency in run.latencies],
            sum(run.errors for run in runs),
        )


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: (status, body, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() != "close"


def hammer(
    url: str,
    bodies: Callable[[], bytes | tuple[bytes, bytes] | None],
    *,
    expect: bytes,
    clients: int,
    headers: dict[str, str] | None = None,
    seconds: float = 3600.0,
) -> Load:
    """POST ``bodies()`` to ``url`` from ``clients`` keep-alive connections at once.

    Each connection sends its next request as soon as the previous answer is read, until
    ``bodies()`` returns None or ``seconds`` pass. A good answer is a 200 whose body
    starts with ``expect``; anything else (or a broken connection) is an error.
    ``bodies()`` may return ``(body, header lines)`` for a request of its own (cookies):
    the lines (``b"Cookie: ...\\r\\n"``) are sent with that request only.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    if "content-type" not in extra.lower():
        extra += "Content-Type: application/x-www-form-urlencoded\r\n"
    prefix = f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n{extra}".encode()
    latencies: list[float] = []
    errors = 0

    async def client(deadline: float) -> None:
        nonlocal errors
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < deadline:
            body = bodies()
            if body is None:
                break
            own = b""
            if isinstance(body, tuple):
                body, own = body
            start = time.perf_counter()
            try:
                if connection is None:
                    connection = await asyncio.open_connection(host, port)
                reader, writer = connection
                writer.write(prefix + own + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                status, answer, keep = await asyncio.wait_for(_answer(reader), 30)
                good = status == 200 and answer.startswith(expect)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError, ValueError, IndexError):  # fmt: skip
                good, keep = False, False
            if good:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1
            if not keep and connection is not None:
                connection[1].close()
                connection = None
        if connection is not None:
            connection[1].close()

    async def main() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(client(began + seconds) for _ in range(clients)))
        return time.perf_counter() - began

    elapsed = asyncio.run(main())
    return Load(elapsed, latencies, errors)
