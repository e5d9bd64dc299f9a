"""A pooler in transaction mode, as small as the tests need (PgBouncer's ``pool_mode =
transaction`` in a few dozen lines): each client connection is served by a set of server
connections, and each of the client's transactions by one of them, chosen when it begins.

The client's messages are forwarded to the chosen server connection, and the server's
answers back, until the server says it is idle again (ReadyForQuery ``I``): then the next
message of the client may reach another server connection. A transaction (``T``) or a
failed one (``E``) keeps its server connection, as PgBouncer keeps it. Session state (a
prepared statement, a ``SET``) stays on the server connection it was made on, which is
what a client behind such a pooler must live with.

:meth:`Pooler.choose` picks the server connection of the next transaction: ``server`` (a
fixed index) when the test sets one, else the last one or, with the chance
``switching``, one chosen at random (seeded).
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _message(sock: socket.socket) -> tuple[bytes, bytes]:
    """A typed message: its type byte and the whole message (type, length, body)."""
    head = _exactly(sock, 5)
    (length,) = struct.unpack("!I", head[1:])
    return head[:1], head + _exactly(sock, length - 4)


class Pooler:
    """Listens on 127.0.0.1 (:attr:`port`) for clients of the server at ``dsn``."""

    def __init__(self, dsn: str, servers: int = 2, seed: int = 16) -> None:
        parts = urlsplit(dsn)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.servers = servers
        self.random = random.Random(seed)  # noqa: S311 - a test's seeded choices, no secret
        #: The server connection (index) every transaction goes to; None: a random one.
        self.server: int | None = None
        #: The chance that a transaction goes to a server connection chosen at random
        #: rather than the last one (PgBouncer hands out the last one used when it is
        #: idle: under light load, mostly the same one).
        self.switching = 1.0
        self.last: int | None = None
        #: How many transactions (or single statements) went to each index.
        self.served = [0] * servers
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def choose(self) -> int:
        chosen = self.server
        if chosen is None:
            chosen = self.last
            if chosen is None or self.random.random() < self.switching:
                chosen = self.random.randrange(self.servers)
        self.served[chosen] += 1
        self.last = chosen
        return chosen

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _startup(self, client: socket.socket) -> bytes:
        while True:
            (length,) = struct.unpack("!I", _exactly(client, 4))
            body = _exactly(client, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code in (_SSL_REQUEST, _GSS_REQUEST):
                client.sendall(b"N")  # no encryption: the startup message comes next
                continue
            return struct.pack("!I", length) + body

    def _serve(self, client: socket.socket) -> None:
        try:
            startup = self._startup(client)
            servers: list[socket.socket] = []
            greetings: list[bytes] = []
            for _ in range(self.servers):
                server = socket.create_connection(self.target)
                server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sockets.append(server)
                server.sendall(startup)
                greeting = b""
                while True:
                    kind, message = _message(server)
                    greeting += message
                    if kind == b"E":
                        client.sendall(greeting)
                        return
                    if kind == b"Z":
                        break
                servers.append(server)
                greetings.append(greeting)
            client.sendall(greetings[0])
            attached: socket.socket | None = None
            while True:
                kind, message = _message(client)
                if kind == b"X":
                    for server in servers:
                        server.sendall(message)
                    return
                if attached is None:
                    attached = servers[self.choose()]
                attached.sendall(message)
                if kind not in (b"Q", b"S"):
                    continue  # an extended query's Parse, Bind...: answered at its Sync
                while True:
                    kind, answer = _message(attached)
                    client.sendall(answer)
                    if kind == b"Z":
                        break
                if answer[5:6] == b"I":  # idle: the server connection goes back to the pool
                    attached = None
        except (ConnectionError, OSError):
            return
        finally:
            with contextlib.suppress(OSError):
                client.close()


@contextlib.contextmanager
def pooled(connection: Any, servers: int = 2) -> Iterator[Pooler]:
    """Django's ``connection`` (PostgreSQL) reconnected through a :class:`Pooler` in front
    of its server, and back to the server itself at the end."""
    settings = connection.settings_dict
    pooler = Pooler(f"postgresql://{settings['HOST']}:{settings['PORT']}/", servers)
    connection.close()
    before = settings["HOST"], settings["PORT"]
    settings["HOST"], settings["PORT"] = "127.0.0.1", str(pooler.port)
    try:
        yield pooler
    finally:
        connection.close()
        settings["HOST"], settings["PORT"] = before
        pooler.close()
