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

That is the guide read literally (:attr:`Reading.GUIDE`). The guide leaves two things open
that the public PHP kits derived from CMI's sample code settle differently (issue #17,
docs/core.md "Hash readings"):

- :attr:`Reading.KIT`: the kits' ``preg_replace('/document(.)/i', 'document.', $v)``
  works on bytes: the word is rewritten in lower case, the "character" after it is one
  byte (one byte of a multi-byte letter; never ``\\n``, which ``.`` does not match);
- :attr:`Reading.KIT_DECODED`: the kits' callback handlers first remove a final newline,
  decode HTML character references (PHP's ``html_entity_decode``, :func:`html_entity_decode`)
  and trim, then hash as :attr:`Reading.KIT`: they expect CMI may post values encoded.

:func:`compute_hash` signs in one reading; :func:`verify_hash` accepts a hash that matches
in any of the allowed readings, each keyed with the store key, and says which one did.
:func:`neutralise` rewrites a request value into a form on which all readings agree.

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
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from html.entities import name2codepoint
from typing import NamedTuple

from cmi_core.errors import SignatureError

__all__ = [
    "ACCELERATED",
    "ALL_READINGS",
    "EXCLUDED_FIELDS",
    "Reading",
    "Verified",
    "compute_hash",
    "hash_plaintext",
    "html_entity_decode",
    "natcase_sorted",
    "neutralise",
    "parse_readings",
    "readings_agree",
    "strnatcasecmp",
    "verify_hash",
]


class Reading(StrEnum):
    """One way of reading the guide's hash rules (see the module docstring)."""

    GUIDE = "guide"  # §4.1.3 literally: the character after "document", the word as written
    KIT = "kit"  # the PHP kits: "document" in lower case, the byte after it
    KIT_DECODED = "kit-decoded"  # the kits' callback handlers: HTML-decoded values, then KIT


_GUIDE, _KIT_DECODED = Reading.GUIDE, Reading.KIT_DECODED  # module constants: a StrEnum
# member read from its class is slow (about 1,000 instructions) on the hot path

#: Every documented reading, in the order :func:`verify_hash` tries them (the guide's first).
ALL_READINGS: tuple[Reading, ...] = (Reading.GUIDE, Reading.KIT, Reading.KIT_DECODED)


def parse_readings(value: str | Iterable[Reading | str] | None) -> tuple[Reading, ...]:
    """Readings from a setting: None, ``""`` or ``"all"`` -> all; a name or names -> those.

    Raises ``ValueError`` naming the known readings for anything else.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "all")):
        return ALL_READINGS
    names = [value] if isinstance(value, str) else list(value)
    known = ", ".join(repr(r.value) for r in ALL_READINGS)
    try:
        readings = tuple(dict.fromkeys(Reading(str(name).strip().lower()) for name in names))
    except ValueError:
        raise ValueError(f"one of {known}, or 'all'") from None
    if not readings:
        raise ValueError(f"one of {known}, or 'all'")
    return readings


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


# -- the kits' readings (pure Python: tried only when the guide's reading fails) -----------

#: PHP's html_entity_decode($v, ENT_QUOTES, 'UTF-8') recognises "&name;", "&#NN;" and
#: "&#xHH;" (strtol also takes a "0x" after the "x"); the semicolon is required.
_ENTITY = re.compile(
    r"&(?:#(?:([0-9]+)|[xX](?:0[xX](?=[0-9A-Fa-f]))?([0-9A-Fa-f]+))|([A-Za-z0-9]+));"
)
_KIT_DOCUMENT = re.compile(rb"document[^\n]", re.IGNORECASE)  # PCRE "." without /s, no /u
_FINAL_NEWLINE = re.compile(r"\n$")  # Python's "$", like PCRE's, also matches before a final \n


def _allowed_html401(code: int) -> bool:
    """PHP's ``unicode_cp_is_allowed`` for HTML 4.01 (ext/standard/html.c), as PHP 8.2
    answers it: tab, LF, CR, U+0020-U+007E, U+00A0-U+D7FF and U+E000-U+10FFFF (the
    non-characters U+FFFE, U+FDD0... included)."""
    return (
        0x20 <= code <= 0x7E
        or code in (0x09, 0x0A, 0x0D)
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0x10FFFF
    )


def _entity(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        code = name2codepoint.get(name)  # the 252 HTML 4.01 names; no "apos" in HTML 4.01
        return chr(code) if code is not None else match[0]
    digits = (decimal if decimal is not None else hexadecimal).lstrip("0") or "0"
    if len(digits) > 7:  # past U+10FFFF (and never int() of a hostile 5,000-digit run)
        return match[0]
    code = int(digits, 10 if decimal is not None else 16)
    return chr(code) if code <= 0x10FFFF and _allowed_html401(code) else match[0]


def html_entity_decode(value: str) -> str:
    """PHP 8's ``html_entity_decode($value, ENT_QUOTES, 'UTF-8')`` (ENT_HTML401).

    Decodes the 252 named references of HTML 4.01 (case-sensitive, ``&apos;`` is not one
    of them), and numeric ones (``&#39;``, ``&#x27;``) whose code point HTML 4.01 allows
    (not NUL, C0/C1 controls other than tab, LF, CR, DEL, surrogates, nor past U+10FFFF:
    those stay as written). ENT_QUOTES decodes both quotes. Unknown names stay as
    written. Checked against PHP 8.2 itself (tests/core/test_readings_php.py).
    """
    if "&" not in value:
        return value
    return _ENTITY.sub(_entity, value)


def _kit_value(value: str, *, decode: bool) -> bytes:
    """One value as the kits hash it: [``\n$`` removed, decoded,] trimmed, escaped, then
    ``preg_replace('/document(.)/i', 'document.', ...)`` on its UTF-8 bytes."""
    if decode:
        value = html_entity_decode(_FINAL_NEWLINE.sub("", value))
    data = _escape(str.strip(value, PHP_TRIM)).encode("utf-8")
    return _KIT_DOCUMENT.sub(b"document.", data) if b"ocument" in data.lower() else data


def _kit_plaintext(fields: Mapping[str, str], store_key: str, *, decode: bool) -> bytes:
    values = [_kit_value(fields[name], decode=decode) for name in _hashed_names(fields)]
    return b"".join(value + b"|" for value in values) + _key_tail(store_key)[1:]


def _reading_plaintext(fields: Mapping[str, str], store_key: str, reading: Reading) -> bytes:
    if reading is Reading.GUIDE:
        return _plaintext(fields, store_key)
    if reading is Reading.KIT:
        return _kit_plaintext(fields, store_key, decode=False)
    if reading is Reading.KIT_DECODED:
        return _kit_plaintext(fields, store_key, decode=True)
    raise ValueError(f"unknown reading {reading!r}")


def hash_plaintext(
    fields: Mapping[str, str], store_key: str, reading: Reading = Reading.GUIDE
) -> str:
    """The exact text CMI hashes for these fields and this store key (guide §4.1.3).

    Under :attr:`Reading.KIT` a stray byte of a letter after "document" is not UTF-8: it
    shows as U+FFFD here.
    """
    return _reading_plaintext(fields, store_key, Reading(reading)).decode("utf-8", "replace")


def _digest(fields: Mapping[str, str], store_key: str, reading: Reading = Reading.GUIDE) -> bytes:
    plaintext = (
        _plaintext(fields, store_key)  # the hot path, without a detour
        if reading is _GUIDE
        else _reading_plaintext(fields, store_key, reading)
    )
    return binascii.b2a_base64(hashlib.sha512(plaintext).digest(), newline=False)


def compute_hash(
    fields: Mapping[str, str], store_key: str, reading: Reading = Reading.GUIDE
) -> str:
    """``Base64(SHA-512(plaintext))`` of the fields in one reading (``ver3``, §4.1.3)."""
    if reading is not _GUIDE:
        reading = Reading(reading)
    return _digest(fields, store_key, reading).decode("ascii")


def received_hash(fields: Mapping[str, str]) -> str | None:
    """The hash a message carries (``HASH`` on results, ``hash`` on requests), if any."""
    found = fields.get("HASH")
    if found is None:
        found = fields.get("hash")
    if found is None:
        found = next((v for k, v in fields.items() if k.lower() == "hash"), None)
    return found


class Verified(NamedTuple):
    """A message whose hash matched: the reading that matched, and the values it hashed.

    Immutable (a named tuple: built in a fraction of a frozen dataclass's time, on the
    path of every callback); its ``repr`` leaves the fields out.

    ``fields`` are the fields as received (the same mapping), except under
    :attr:`Reading.KIT_DECODED`, where every value is HTML-decoded
    (:func:`html_entity_decode`): the text that was signed.
    """

    reading: Reading
    fields: Mapping[str, str]

    def __repr__(self) -> str:
        return f"Verified(reading={self.reading!r})"


def verify_hash(
    fields: Mapping[str, str],
    store_key: str,
    readings: str | Iterable[Reading | str] = ALL_READINGS,
) -> Verified:
    """Check the hash a received message carries in each allowed reading, the guide's first.

    Returns the first reading that matches (every reading is keyed with the store key, so
    none accepts what the key did not sign); raises :class:`SignatureError` when the hash
    is missing or empty (never a silent ``False``) or matches in no allowed reading. The
    comparisons run in constant time (``hmac.compare_digest``); the messages never include
    either hash.
    """
    allowed = readings if readings is ALL_READINGS else parse_readings(readings)
    received = received_hash(fields)
    received = received.strip() if received is not None else ""
    if not received:
        raise SignatureError("the message carries no HASH field")
    expected = received.encode("utf-8")
    for reading in allowed:
        if hmac.compare_digest(_digest(fields, store_key, reading), expected):
            if reading is _KIT_DECODED:
                decoded = {name: html_entity_decode(value) for name, value in fields.items()}
                return Verified(reading, decoded)
            return Verified(reading, fields)
    raise SignatureError("the HASH does not match these fields and the store key")


# -- requests on which every reading agrees ---------------------------------------------

_WORD = re.compile("document", re.IGNORECASE)
#: Punctuation after "document" with an obvious ASCII look-alike.
_ASCII_LOOKALIKE = {
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u00a0": " ",
}


def _ascii_for(char: str) -> str:
    """One ASCII character standing for ``char``: itself, its letter without accents
    (``é`` -> ``e``), a look-alike, or a space; never ``\\n`` or ``\\r`` (a PCRE built
    with another newline convention would not match them with ``.``)."""
    if char.isascii():
        return " " if char in "\n\r\0" else char
    if char in _ASCII_LOOKALIKE:
        return _ASCII_LOOKALIKE[char]
    base = unicodedata.normalize("NFKD", char)[:1]
    return base if base.isascii() and base.isalnum() else " "


def _fix_documents(value: str) -> str:
    out: list[str] = []
    position = 0
    for match in _WORD.finditer(value):
        start, end = match.span()
        if start < position:  # inside an all-capital word lowered above: the next pass
            continue
        out.append(value[position:start])
        word = match[0]
        if end >= len(value):
            out.append(word)  # nothing follows: both readings leave it as written
            position = end
            continue
        out.append("document")
        follower = _ascii_for(value[end])
        position = end + 1
        if word.isupper() and follower.isalpha():  # "DOCUMENTS" -> "documents"
            tail = end + 1
            while tail < len(value) and "A" <= value[tail] <= "Z":  # ASCII: same length
                tail += 1
            follower += value[end + 1 : tail]
            follower = follower.lower()
            position = tail
        out.append(follower)
    out.append(value[position:])
    return "".join(out)


def neutralise(value: str) -> str:
    """``value`` rewritten so that every :class:`Reading` hashes it the same way.

    The one place a request value is rewritten for the hash's sake (issue #17):

    1. HTML character references are decoded, repeatedly, until none is left (``Fish
       &amp;amp; Chips`` -> ``Fish & Chips``): the kits' decoding then changes nothing;
    2. every ``document`` (any case) followed by a character is written in lower case, and
       that character made one ASCII byte other than ``\\n``: ``é`` -> ``e``, ``\u2019`` -> ``'``,
       a character with no ASCII look-alike -> a space; an all-capital word is lowered
       whole (``DOCUMENTS`` -> ``documents``). A final ``document`` stays as written (no
       reading touches it).

    ``Porte-Documents cuir`` -> ``Porte-documents cuir``, ``Classeur documenté`` ->
    ``Classeur documente``. Values without ``document`` or ``&`` come back unchanged.
    """
    for _ in range(8):  # each decoding shortens the text: a fixed point comes quickly
        decoded = html_entity_decode(value)
        fixed = _fix_documents(decoded) if "ocument" in decoded.lower() else decoded
        if fixed == value:
            return value
        value = fixed
    return value


def readings_agree(value: str) -> bool:
    """True when every reading hashes this one value to the same bytes."""
    guide = _join_python((value,), b"")
    return _kit_value(value, decode=False) == guide == _kit_value(value, decode=True)
