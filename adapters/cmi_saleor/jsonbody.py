"""Reading JSON from anyone: the one parser of every JSON the app receives.

Bodies of ``/api/register``, the webhooks and the Dashboard's configuration API, and
Saleor's answers to the app's own calls (GraphQL, JWKS), are read with :func:`loads`,
which turns everything a hostile or broken sender can put in a body into
:class:`BadJSONError` (the caller answers 400, or 413 for a body too large):

- invalid JSON or UTF-8 (``ValueError``, ``UnicodeError``), a UTF-8 byte order mark;
- nesting deeper than :data:`MAX_DEPTH` (``json`` itself raises ``RecursionError`` on a
  few thousand ``[``, which is not a ``ValueError``; and a structure nested a few hundred
  levels deep would still break code that walks it recursively later);
- strings holding a lone UTF-16 surrogate (``"\\ud800"``), which no database, header or
  answer can encode, or a NUL character (``"\\u0000"``), which PostgreSQL refuses;
- ``NaN``, ``Infinity`` and numbers that overflow a float, or integers longer than Python
  converts (``ValueError`` since Python 3.11);
- a body longer than the caller's limit.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_DEPTH", "BadJSONError", "loads", "read_object"]

#: Deepest nesting accepted (Saleor's payloads nest about eight levels).
MAX_DEPTH = 64


class BadJSONError(ValueError):
    """A body that is not acceptable JSON; ``status`` is the HTTP answer (400 or 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _encodable(text: str) -> bool:
    if "\x00" in text:  # PostgreSQL's text refuses NUL
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeError:  # a lone surrogate ("\\ud800"): no database or header takes it
        return False
    return True


def _problem(value: Any) -> str:
    """Why ``value`` is refused (too deep, a string no UTF-8 can hold), or ``""``.

    Iterative, so no nesting makes it recurse.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return "body holds a NUL character or a lone surrogate"
            continue
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return "body nests too deeply"
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, dict | list | str)
        )
    return ""


def loads(raw: bytes | str, *, limit: int | None = None) -> Any:
    """The JSON value of ``raw``; :class:`BadJSONError` for anything else (never another error).

    ``limit``: the most bytes accepted (callers read ``limit + 1`` bytes, so a longer body
    is seen and refused with status 413 without being read whole).
    """
    if limit is not None and len(raw) > limit:
        raise BadJSONError("body too large", status=413)
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if text.startswith("\ufeff"):
            raise ValueError("byte order mark")
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except (ValueError, RecursionError, UnicodeError, TypeError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError: nesting.
        raise BadJSONError("body is not valid JSON") from exc
    problem = _problem(value)
    if problem:
        raise BadJSONError(problem)
    return value


def read_object(raw: bytes | str, *, limit: int | None = None) -> dict[str, Any]:
    """:func:`loads`, and the value must be a JSON object."""
    value = loads(raw, limit=limit)
    if not isinstance(value, dict):
        raise BadJSONError("body is not a JSON object")
    return value
