"""Field lists as CMI posts them: one lookup and one signer for the whole emulator.

Requests and results are ordered ``(name, value)`` lists. CMI compares field names
without regard to case (guide §4.1.1), so every lookup in the emulator goes through
:func:`field`; every ``HASH`` the emulator sends comes from :func:`sign`.

The emulator runs in one reading of the hash rules (``cmi sandbox --reading``, issue #17;
docs/sandbox.md): it verifies requests and signs results in that reading. Under
``kit-decoded`` it also posts every result value HTML-encoded, as PHP's
``htmlspecialchars($v, ENT_QUOTES)`` would (``O'Brien & fils`` ->
``O&#039;Brien &amp; fils``), signed over the text before encoding: what the kits'
callback handlers, which decode before hashing, expect of CMI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cmi_core.hashing import Reading, compute_hash, html_entity_decode

__all__ = ["Fields", "ascii_digits", "field", "html_encode", "plain", "sign"]

Fields = list[tuple[str, str]]

_ASCII_DIGITS = re.compile(r"[0-9]+")


def field(fields: Sequence[tuple[str, str]], name: str) -> str:
    """A field's value (the first one), its name compared without regard to case; "" if absent."""
    wanted = name.lower()
    return next((value for key, value in fields if key.lower() == wanted), "")


def ascii_digits(text: str) -> bool:
    """True for a non-empty run of ``0``-``9`` only.

    ``str.isdigit`` also accepts Arabic-Indic (``٣٠``), superscript and other Unicode
    digits, which CMI's forms do not; shopper and client input is checked with this.
    """
    return _ASCII_DIGITS.fullmatch(text) is not None


_SPECIAL = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#039;"})


def html_encode(value: str) -> str:
    """PHP 8's ``htmlspecialchars($value, ENT_QUOTES)``: ``& < > " '`` as references."""
    return value.translate(_SPECIAL)


def plain(fields: Sequence[tuple[str, str]], reading: Reading) -> Fields:
    """Signed fields back as :func:`sign` took them (decoded under ``kit-decoded``)."""
    if reading is Reading.KIT_DECODED:
        return [(name, html_entity_decode(value)) for name, value in fields]
    return list(fields)


def sign(
    fields: Sequence[tuple[str, str]],
    store_key: str,
    *,
    corrupt: bool = False,
    reading: Reading = Reading.GUIDE,
) -> Fields:
    """The fields with ``HASH`` appended, as CMI signs a result (guide §4.2.4).

    Any previous hash field is dropped first. The hash covers every field but ``hash``
    and ``encoding`` (:func:`~cmi_core.hashing.compute_hash` leaves both out); an
    ``encoding`` the merchant sent stays among the posted fields, since CMI echoes the
    request's fields. ``corrupt=True`` signs with a wrong key: the fields are the same,
    the ``HASH`` does not match them (the ``corrupt_hash`` fault switch). ``reading``:
    the reading signed in; under ``kit-decoded`` the values are posted HTML-encoded
    (:func:`html_encode`) and the hash is the ``kit`` one of the values given.
    """
    kept = [(name, value) for name, value in fields if name.lower() != "hash"]
    key = store_key + "-corrupted" if corrupt else store_key
    if reading is Reading.KIT_DECODED:
        digest = compute_hash(dict(kept), key, Reading.KIT)
        return [*((name, html_encode(value)) for name, value in kept), ("HASH", digest)]
    return [*kept, ("HASH", compute_hash(dict(kept), key, reading))]
