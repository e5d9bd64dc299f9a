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
