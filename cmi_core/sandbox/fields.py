"""Field lists as CMI posts them: one lookup and one signer for the whole emulator.

Requests and results are ordered ``(name, value)`` lists. CMI compares field names
without regard to case (guide §4.1.1), so every lookup in the emulator goes through
:func:`field`; every ``HASH`` the emulator sends comes from :func:`sign`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cmi_core.hashing import compute_hash

__all__ = ["Fields", "ascii_digits", "field", "sign"]

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


def sign(fields: Sequence[tuple[str, str]], store_key: str, *, corrupt: bool = False) -> Fields:
    """The fields with ``HASH`` appended, as CMI signs a result (guide §4.2.4).

    Any previous hash field is dropped first. The hash covers every field but ``hash``
    and ``encoding`` (:func:`~cmi_core.hashing.compute_hash` leaves both out); an
    ``encoding`` the merchant sent stays among the posted fields, since CMI echoes the
    request's fields. ``corrupt=True`` signs with a wrong key: the fields are the same,
    the ``HASH`` does not match them (the ``corrupt_hash`` fault switch).
    """
    kept = [(name, value) for name, value in fields if name.lower() != "hash"]
    key = store_key + "-corrupted" if corrupt else store_key
    return [*kept, ("HASH", compute_hash(dict(kept), key))]
