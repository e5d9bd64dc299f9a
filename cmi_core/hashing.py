"""The ``ver3`` hash of CMI's requests and results (guide §4.1.3 and §4.2.4).

``HASH = Base64(SHA-512(plaintext))``. The plaintext is built exactly as CMI's own PHP kit
builds it (guide §4.1.3, docs/protocol.md#the-ver3-hash):

1. every posted field except ``hash`` and ``encoding`` (names compared without regard to
   case, so a callback's ``HASH`` is excluded too); empty values are kept;
2. fields ordered by name with PHP's ``natcasesort``: :func:`strnatcasecmp`, letters
   compared upper-cased, runs of digits compared as numbers (``price2 < price10``), so
   ``_`` sorts after letters (``EXTRAS < EXTRA_X``); the sort is stable, as PHP 8's is;
3. each value trimmed the way PHP's ``trim`` does (space, ``\\t``, ``\\n``, ``\\r``, ``\\0``,
   ``\\x0B`` only), then ``\\`` escaped as ``\\\\`` first and ``|`` as ``\\|`` second;
4. the "document" rule (guide 1.4.2, §4.1.3 "Remarque"): the character that follows the
   word ``document`` (any case) becomes ``.`` (``documentabc`` -> ``document.bc``);
5. values joined with ``|``, then ``|`` and the escaped store key appended; UTF-8.

The field order depends only on the set of names, which is the same for every callback
of a shop, so it is computed once per name list and cached.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import itertools
import re
from collections.abc import Callable, Iterable, Mapping

from cmi_core.errors import SignatureError

__all__ = [
    "ACCELERATED",
    "EXCLUDED_FIELDS",
    "compute_hash",
    "hash_plaintext",
    "natcase_sorted",
    "strnatcasecmp",
    "verify_hash",
]

#: Field names never hashed, compared case-insensitively (guide §4.1.3 "Remarque").
EXCLUDED_FIELDS = frozenset({"hash", "encoding"})
PHP_TRIM = " \t\n\r\0\x0b"
_DOCUMENT = re.compile(r"(document).", re.IGNORECASE | re.DOTALL)
_SEPARATOR = "\x1f"  # joins values before escaping; a value holding it takes the slow path


def _compare_right(a: str, i: int, b: str, j: int) -> tuple[int, int, int]:
    """Compare two digit runs without leading zeros: the longer run is the larger number."""
    bias = 0
    while True:
        a_digit = i < len(a) and _isdigit(a[i])
        b_digit = j < len(b) and _isdigit(b[j])
        if not a_digit and not b_digit:
            return bias, i, j
        if not a_digit:
            return -1, i, j
        if not b_digit:
            return 1, i, j
        if bias == 0 and a[i] != b[j]:
            bias = -1 if a[i] < b[j] else 1
        i += 1
        j += 1


def _compare_left(a: str, i: int, b: str, j: int) -> tuple[int, int, int]:
    """Compare two "fractional" digit runs (one starts with 0): first difference wins."""
    while True:
        a_digit = i < len(a) and _isdigit(a[i])
        b_digit = j < len(b) and _isdigit(b[j])
        if not a_digit and not b_digit:
            return 0, i, j
        if not a_digit:
            return -1, i, j
        if not b_digit:
            return 1, i, j
        if a[i] != b[j]:
            return (-1 if a[i] < b[j] else 1), i, j
        i += 1
        j += 1


def _isdigit(char: str) -> bool:
    return "0" <= char <= "9"  # C isdigit: ASCII digits only ("" is not one)


def _isspace(char: str) -> bool:
    return char != "" and char in " \t\n\r\x0b\x0c"  # C isspace; "" is the terminator


def strnatcasecmp(a: str, b: str) -> int:
    """PHP's ``strnatcasecmp`` (ext/standard/strnatcmp.c, PHP 8): -1, 0 or 1.

    Digit runs compare as numbers, letters compare upper-cased (C ``toupper`` on ASCII),
    leading zeros are skipped at the start of the strings, and runs starting with ``0``
    compare digit by digit ("fractional" parts).
    """
    if not a or not b:
        return 0 if len(a) == len(b) else (1 if len(a) > len(b) else -1)
    a_end, b_end = len(a), len(b)
    i = j = 0
    leading = True
    while True:
        ca, cb = a[i], b[j]
        if leading:
            while ca == "0" and i + 1 < a_end and _isdigit(a[i + 1]):
                i += 1
                ca = a[i]
            while cb == "0" and j + 1 < b_end and _isdigit(b[j + 1]):
                j += 1
                cb = b[j]
            leading = False
        while _isspace(ca):
            i += 1
            ca = a[i] if i < a_end else ""
        while _isspace(cb):
            j += 1
            cb = b[j] if j < b_end else ""
        if _isdigit(ca) and _isdigit(cb):
            if ca == "0" or cb == "0":
                result, i, j = _compare_left(a, i, b, j)
            else:
                result, i, j = _compare_right(a, i, b, j)
            if result:
                return result
            if i == a_end and j == b_end:
                return 0
            if i == a_end:
                return -1
            if j == b_end:
                return 1
            ca, cb = a[i], b[j]
        ca, cb = _ascii_upper(ca), _ascii_upper(cb)
        if ca != cb:
            return -1 if _c_order(ca) < _c_order(cb) else 1
        i += 1
        j += 1
        if i >= a_end and j >= b_end:
            return 0
        if i >= a_end:
            return -1
        if j >= b_end:
            return 1


def _ascii_upper(char: str) -> str:
    return char.upper() if "a" <= char <= "z" else char


def _c_order(char: str) -> bytes:
    # C compares unsigned chars of the UTF-8 bytes; an empty string is the NUL terminator.
    return char.encode("utf-8") if char else b"\0"


_natcase_key = functools.cmp_to_key(strnatcasecmp)


def natcase_sorted(names: Iterable[str]) -> list[str]:
    """Names in PHP ``natcasesort`` order (stable, like PHP 8's sort)."""
    return sorted(names, key=_natcase_key)


# A shop's callbacks carry the same field names every time, so the sort order of a name
# set is remembered, keyed by the number of fields. Each entry reads *every* name of its
# set (hashed ones first, in hash order): when it finds them all in a mapping of the same
# size, that mapping has exactly this name set, hence this order.
_ORDERS: dict[int, list[tuple[tuple[str, ...], int]]] = {}  # size: [(names, kept), ...]
_ORDERS_PER_SIZE = 8


def _hashed_names(fields: Mapping[str, str]) -> list[str]:
    """The names to hash, in hash order (guide §4.1.3: natcasesort), remembered if it can."""
    names = natcase_sorted(fields)
    hashed = [name for name in names if name.lower() not in EXCLUDED_FIELDS]
    excluded = [name for name in names if name.lower() in EXCLUDED_FIELDS]
    ambiguous = any(strnatcasecmp(a, b) == 0 for a, b in itertools.pairwise(names))
    if len(names) > 1 and not ambiguous:  # names PHP finds equal keep their posted order
        cached = _ORDERS.setdefault(len(names), [])
        if len(cached) >= _ORDERS_PER_SIZE:
            cached.pop()
        cached.insert(0, ((*hashed, *excluded), len(hashed)))
    return hashed


def _escape(value: str) -> str:
    """``\\`` then ``|`` escaped (in that order), as the kit does for the store key."""
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _escape_value(value: str) -> str:
    """One field value as it enters the plaintext: trimmed, escaped, "document" rule."""
    escaped = _escape(str.strip(value, PHP_TRIM))  # a str subclass's own strip is not CMI's
    if "document" in escaped.lower():
        escaped = _DOCUMENT.sub(r"\1.", escaped)
    return escaped


# One probing pass maps every byte to its class: PHP's trim characters to \x01, the
# separator to \x02, the letters of "document" (either case) to \x04..\x20, anything else
# to \x00. Searching that mostly-zero text skips ahead quickly.
_SEP = _SEPARATOR.encode()


def _probe_table() -> bytes:
    table = bytearray(256)
    for byte in PHP_TRIM.encode():
        table[byte] = 1
    table[_SEP[0]] = 2
    for index, letter in enumerate(b"document"):
        table[letter] = table[letter - 32] = 4 * (index + 1)
    return bytes(table)


_PROBE = _probe_table()
_PROBE_DOCUMENT = b"document".translate(_PROBE)
_PROBE_WS_SEP, _PROBE_SEP_WS = b"\x01\x02", b"\x02\x01"


@functools.lru_cache(maxsize=64)
def _key_tail(store_key: str) -> bytes:
    return b"|" + _escape(store_key).encode("utf-8")


def _join_python(values: tuple[str, ...], tail: bytes) -> bytes:
    """The plaintext of values already in hash order: trimmed, escaped, "document", joined.

    Shared by ``_plaintext_python``; ``cmi_core._speedups.plaintext`` does the same in C.
    """
    # Fast path: join the values with a separator, check in one pass that no value needs
    # trimming, holds the separator or the word "document" (whose rule is per value),
    # then escape the whole text at once. Escaping is character by character, so this
    # equals escaping value by value; otherwise fall back to exactly that. (``find``, not
    # ``in``: ``bytes in bytes`` first tries the operand as an int and pays for the error.)
    data = _SEPARATOR.join(values).encode("utf-8")
    probe = data.translate(_PROBE)
    if (
        data.count(_SEP) == len(values) - 1
        and probe.find(_PROBE_DOCUMENT) < 0
        and probe.find(_PROBE_WS_SEP) < 0
        and probe.find(_PROBE_SEP_WS) < 0
        and probe[:1] != b"\x01"
        and probe[-1:] != b"\x01"
    ):
        return data.replace(b"\\", b"\\\\").replace(b"|", b"\\|").replace(_SEP, b"|") + tail
    return "|".join([_escape_value(value) for value in values]).encode("utf-8") + tail


def _plaintext_python(
    fields: Mapping[str, str], names: tuple[str, ...], kept: int, tail: bytes
) -> bytes:
    """The plaintext of the values of ``names[:kept]``, every name looked up first (a
    missing one raises KeyError). The pure-Python definition of ``_speedups.plaintext``."""
    values = tuple(map(fields.__getitem__, names))[:kept]
    return _join_python(values, tail) if values else tail[1:]


def _accelerated() -> Callable[[Mapping[str, str], tuple[str, ...], int, bytes], bytes] | None:
    try:
        from cmi_core._speedups import plaintext
    except ImportError:  # built without a C compiler: the pure-Python definition
        return None
    return plaintext


_c_plaintext = _accelerated()

#: True when the C accelerator (``cmi_core._speedups``) builds the plaintext.
ACCELERATED = _c_plaintext is not None


def _plaintext(fields: Mapping[str, str], store_key: str) -> bytes:
    tail = _key_tail(store_key)
    build = _c_plaintext or _plaintext_python
    # A remembered order is proved by finding every one of its names: a dict subclass
    # whose __missing__ answers for absent names (defaultdict) proves nothing that way.
    missing = type(fields) is not dict and hasattr(type(fields), "__missing__")
    for names, kept in () if missing else _ORDERS.get(len(fields), ()):
        try:
            return build(fields, names, kept, tail)
        except KeyError:
            continue
    names = tuple(_hashed_names(fields))
    return build(fields, names, len(names), tail)


def hash_plaintext(fields: Mapping[str, str], store_key: str) -> str:
    """The exact text CMI hashes for these fields and this store key (guide §4.1.3)."""
    return _plaintext(fields, store_key).decode("utf-8")


def _digest(fields: Mapping[str, str], store_key: str) -> bytes:
    return binascii.b2a_base64(
        hashlib.sha512(_plaintext(fields, store_key)).digest(), newline=False
    )


def compute_hash(fields: Mapping[str, str], store_key: str) -> str:
    """``Base64(SHA-512(plaintext))`` of the fields, as CMI computes it (``ver3``)."""
    return _digest(fields, store_key).decode("ascii")


def received_hash(fields: Mapping[str, str]) -> str | None:
    """The hash a message carries (``HASH`` on results, ``hash`` on requests), if any."""
    found = fields.get("HASH")
    if found is None:
        found = fields.get("hash")
    if found is None:
        found = next((v for k, v in fields.items() if k.lower() == "hash"), None)
    return found


def verify_hash(fields: Mapping[str, str], store_key: str) -> None:
    """Check the hash a received message carries; raise :class:`SignatureError` if not valid.

    A missing or empty hash is an error, never a silent ``False``. The comparison runs in
    constant time (``hmac.compare_digest``). The messages never include either hash.
    """
    received = received_hash(fields)
    received = received.strip() if received is not None else ""
    if not received:
        raise SignatureError("the message carries no HASH field")
    if not hmac.compare_digest(_digest(fields, store_key), received.encode("utf-8")):
        raise SignatureError("the HASH does not match these fields and the store key")
