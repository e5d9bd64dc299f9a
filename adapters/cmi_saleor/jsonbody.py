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
import re
from typing import Any

__all__ = ["MAX_DEPTH", "BadJSONError", "loads", "nests_too_deep", "read_object"]

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


#: The escapes that can put a NUL or a lone surrogate in a decoded string (a raw NUL or
#: control character inside a string is invalid JSON, and strict UTF-8 has no surrogates).
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float)


def _bad_string(value: Any) -> bool:
    """Whether a string in ``value`` holds a NUL or a lone surrogate (iterative walk)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests deeper than :data:`MAX_DEPTH` (level by level: no recursion)."""
    level = [value]
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend(c for c in children if isinstance(c, dict | list))
        if not below:
            return False
        level = below
    return True


def nests_too_deep(value: Any) -> bool:
    """Whether a value parsed elsewhere (a JWT's claims) nests deeper than :data:`MAX_DEPTH`.

    Whether ``json`` itself raises ``RecursionError`` first depends on the Python version
    (3.13 parses thousands of levels): this gives one answer everywhere.
    """
    return _too_deep(value)


def loads(raw: bytes | str, *, limit: int | None = None) -> Any:
    """The JSON value of ``raw``; :class:`BadJSONError` for anything else (never another error).

    ``limit``: the most bytes accepted (callers read ``limit + 1`` bytes, so a longer body
    is seen and refused with status 413 without being read whole). The checks after
    parsing only walk the value when the text could hold what they look for (a few
    microseconds for a webhook's payload).
    """
    if limit is not None and len(raw) > limit:
        raise BadJSONError("body too large", status=413)
    try:
        if isinstance(raw, bytes):
            text = raw.decode("utf-8")
        else:
            text = raw
            text.encode("utf-8")  # no surrogates in a str either
        if text.startswith("\ufeff"):
            raise ValueError("byte order mark")
        value = _DECODER.decode(text)
    except (ValueError, RecursionError, UnicodeError, TypeError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError: nesting.
        raise BadJSONError("body is not valid JSON") from exc
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value):
        raise BadJSONError("body nests too deeply")
    if _SUSPECT.search(text) and _bad_string(value):
        raise BadJSONError("body holds a NUL character or a lone surrogate")
    return value


def read_object(raw: bytes | str, *, limit: int | None = None) -> dict[str, Any]:
    """:func:`loads`, and the value must be a JSON object."""
    value = loads(raw, limit=limit)
    if not isinstance(value, dict):
        raise BadJSONError("body is not a JSON object")
    return value
