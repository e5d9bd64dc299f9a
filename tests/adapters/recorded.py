"""The SQL statements a piece of code runs on the default connection (every adapter suite)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection


def statements_of(run: Callable[[], Any]) -> list[str]:
    """The statements ``run()`` sent through Django's cursor on the default connection,
    in order (BEGIN and COMMIT are not sent that way)."""
    seen: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        run()
    return seen


def round_trips(run: Callable[[], Any]) -> list[str]:
    """What ``run()`` sent to PostgreSQL on the default connection, one entry per round
    trip (each client message the server answered with ReadyForQuery: a simple query,
    or an extended query's Sync), read from libpq's own trace of the protocol. Counts
    what psycopg sends by itself too (its BEGIN, COMMIT). A simple query is given as its
    text; an extended one as the trace's Parse line."""
    import tempfile

    from psycopg import pq

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            run()
        finally:
            pgconn.untrace()
        trace.seek(0)
        lines = trace.read().splitlines()
    sent: list[str] = []
    pending = ""
    for line in lines:
        if line.count("\t") < 2:  # a message's text going on over lines
            continue
        direction, _length, message, *rest = [*line.split("\t"), ""]
        if direction == "F" and message in ("Query", "Parse"):
            pending = rest[0].strip()
            if message == "Query":  # the trace writes the text between double quotes
                pending = pending[1:-1]
        elif direction == "B" and message == "ReadyForQuery":
            sent.append(pending)
            pending = ""
    return sent
