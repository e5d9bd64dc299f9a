"""The one JSON reader (:mod:`cmi_saleor.jsonbody`): what it refuses and what it keeps."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_saleor.jsonbody import MAX_DEPTH, BadJSONError, loads, read_object


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"[" * 100_000, 400),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), 400),
        (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), 400),
        (b"NaN", 400),
        (b"[Infinity]", 400),
        (b"1e400", 400),
        (b"9" * 5000, 400),
        (b'"\\u0000"', 400),
        (b'"\\ud800"', 400),
        (b'["\\udc00x"]', 400),
        (b"\xef\xbb\xbf{}", 400),
        (b'{"a": "\xff"}', 400),
        (b"", 400),
        (b'{"a": 1} x', 400),
        (b"x" * 11, 413),
    ],
)
def test_refused(raw: bytes, status: int) -> None:
    with pytest.raises(BadJSONError) as caught:
        loads(raw, limit=10 if status == 413 else None)
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "deep"),
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        (b'"\\\\u0000"', "\\u0000"),  # an escaped backslash, not a NUL
        (
            b'{"amount": 120.5, "n": 12345678901234567890}',
            {"amount": 120.5, "n": 12345678901234567890},
        ),
        ('{"city": "Fès"}'.encode(), {"city": "Fès"}),
    ],
)
def test_kept(raw: bytes, value: Any) -> None:
    parsed = loads(raw)
    if value != "deep":
        assert parsed == value


def test_read_object_wants_an_object() -> None:
    assert read_object(b'{"a": []}') == {"a": []}
    for raw in (b"[]", b"null", b'"x"', b"1"):
        with pytest.raises(BadJSONError, match="not a JSON object"):
            read_object(raw)
