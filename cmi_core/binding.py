"""Binding a result to the request the shop signed (guide §4.2.2-§4.2.5).

CMI's ``ver3`` hash signs the field *values* in the order of their names (§4.1.3); it
never signs the names. Whoever holds one genuinely signed result can therefore rename its
fields, as long as the new names sort the values into the same order, and the hash still
verifies. A shopper who typed another order's ``oid`` and amount into their own address
fields, paid their cheap order, then renamed the fields of its genuine result so that
``oid`` and ``amount`` now name their street and city, would have forged an approval of
the expensive order (see docs/security.md). No public CMI kit defends against this.

:func:`bind` closes it. A result (callback or okUrl/failUrl POST) must carry back the
request the shop signed, with every other name one that CMI itself sends:

Hard rules (broken: :class:`BindingError`, the message is refused, nothing changes):

1. every request field comes back under the same name (compared without regard to
   case, as CMI echoes ``CallbackURL`` as ``callbackUrl``) with the same value (PHP-trimmed,
   as the hash trims). ``storetype`` is compared the way CMI rewrites it
   (``3d_pay_hosting`` comes back as ``3D PAY HOSTING``, §4.2.5). ``hash`` and ``encoding``
   are not hashed and not compared;
2. no name appears twice under two spellings (``oid`` and ``OID``);
3. every other name is one CMI sends: a result field of §4.2.3, a field CMI adds in the
   §4.2.5 examples, any other ``EXTRA.*`` (CMI reserves them), or a request field of
   §4.1.1 (or of the examples' merchant) the shop did not send;
4. ``ReturnOid``, where sent, equals ``oid``; ``merchantID``, where sent, equals
   ``clientid``; no value is longer than :data:`MAX_VALUE`.

Strictness (not a refusal): the message is :attr:`Binding.STRICT` when, beyond the
request fields, every value has the exact shape CMI gives it (digits where CMI sends
digits, ``TransId`` in capitals and digits, free text without digits or punctuation such
as ``@ / : =``...), the names a merchant might send but this shop did not, and ``EXTRA.*``
names the guide does not show, are empty, an
approval carries no error text, and the request's ``rnd`` holds a small letter and a
digit (what :func:`cmi_core.request.new_rnd` makes). Otherwise it is
:attr:`Binding.LOOSE`, with the reason.

Why strict is enough: the forged message must contain *every* value of the genuine one
(the hash fixes the sequence of values), and must give the bound payment's own request
values to its request names. Of the two payments' requests, the one built last has a fresh
``rnd`` the other could not contain. If the bound payment's was built last, its ``rnd``
is missing from the other's values: refused by rule 1. If the other's was built last, its
``rnd`` (20 characters with a small letter and a digit) must sit under some result name,
and no result field's strict shape admits such a value: the message is loose. A loose
*approval* is accepted only once CMI's status API confirms the payment
(:func:`cmi_core.decide_callback`'s ``confirmed``); a loose decline is refused.
``tests/core/test_binding.py`` plays the attacker over renamings, added and dropped names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from cmi_core.errors import CallbackError
from cmi_core.fields import RESULT_SHAPES as CMI_RESULT_FIELDS
from cmi_core.hashing import EXCLUDED_FIELDS, PHP_TRIM
from cmi_core.request import REQUIRED, RULES, strong_rnd

__all__ = [
    "CMI_RESULT_FIELDS",
    "MAX_VALUE",
    "MERCHANT_FIELDS",
    "Binding",
    "BindingError",
    "bind",
    "strong_rnd",
]

#: No value CMI sends is longer (the longest the guide gives is 2048, a URL; ``md`` and
#: ``MdErrorMsg`` are at most 512 and 1024).
MAX_VALUE = 2048


class Binding(StrEnum):
    """How firmly a verified result is bound to its payment's request."""

    STRICT = "strict"  # bound, and no value could hide another payment's
    LOOSE = "loose"  # bound, but an approval needs CMI's status API to confirm it
    NONE = "none"  # no expected request was given: nothing is bound


class BindingError(CallbackError):
    """A verified result does not belong to the request it names (a hard rule broken).

    ``rule`` names the rule (never a value that could be a secret).
    """

    def __init__(self, rule: str) -> None:
        self.rule = rule
        super().__init__(f"the result is not bound to its request: {rule}")


_DIGITS = r"[0-9]"
_FREE_TEXT = re.compile(r"^[^\W\d_]*(?:[ .,'’()\-][^\W\d_]*)*$")  # letters, spaces, .,'’()-

#: Names a merchant's request may carry (guide §4.1.1, and the ones the §4.2.5 examples'
#: merchant sent). CMI echoes them; when this shop did not send one, it must come back
#: empty for the message to be strict. The names this library builds or checks come from
#: :mod:`cmi_core.request` (``REQUIRED`` and ``RULES``); the rest are §4.1.1's fields it
#: never sends, and the examples' own.
_ECHOED_ONLY = (
    "BillToStreet3",
    "BillToTelVoice",
    "Bill2Email",
    "ShipToName",
    "ShipToCompany",
    "ShipToStreet1",
    "ShipToStreet2",
    "ShipToStreet3",
    "ShipToCity",
    "ShipToStateProv",
    "ShipToPostalCode",
    "ShipToCountry",
    "ShipToTelVoice",
    "INVOICENUMBER",
    "instalment",
    "GRACEPERIOD",
    "EDITABLEORDERITEM",
    "RecurringFrequency",
    "RecurringFrequencyUnit",
    "RecurringPaymentNumber",
    "CUSTOMERSISDN",
    "MERCHANTSURCHARGE",
    "CUSTOMERSURCHARGE",
    "noCallbackPaymentMethodList",
    "pMethod",
    "digest",
    "choix1",
    "price",
    "qty",
    "total",
    "productCode",
    "itemNumber",
    *(f"DIMCRITERIA{n}" for n in range(1, 11)),
)
MERCHANT_FIELDS = frozenset(name.lower() for name in (*REQUIRED, *RULES, *_ECHOED_ONLY))
_ITEM_FIELD = re.compile(r"^(?:id|itemnumber|productcode|qty|desc|price|total)[0-9]+$")

#: Error texts an approval never carries (strict).
_ERRORS = ("errcode", "errmsg", "responseerror", "mderrormsg", "ireqcode", "ireqdetail")
_STORETYPE_SEPARATORS = re.compile(r"[\s_]+")


def _trim(value: str) -> str:
    return str.strip(value, PHP_TRIM)


def _same_value(name: str, sent: str, received: str) -> bool:
    if name == "storetype":  # §4.2.5: 3d_pay_hosting comes back as "3D PAY HOSTING"
        return (
            _STORETYPE_SEPARATORS.sub(" ", sent).upper()
            == _STORETYPE_SEPARATORS.sub(" ", received).upper()
        )
    return _trim(sent) == _trim(received)


def _approval(by_name: Mapping[str, str]) -> bool:
    code = _trim(by_name.get("procreturncode", ""))
    return code in ("00", "0") and _trim(by_name.get("response", "")) == "Approved"


def bind(received: Mapping[str, str], expected: Mapping[str, str]) -> tuple[Binding, str]:
    """Check that ``received`` (a verified result) belongs to the ``expected`` request.

    ``expected`` is the request's fields as signed (names and values; ``hash`` may be
    included, it is ignored). Returns ``(Binding.STRICT, "")`` or ``(Binding.LOOSE,
    reason)``; raises :class:`BindingError` when a hard rule is broken (see the module
    docstring).
    """
    by_name: dict[str, str] = {}
    for name, value in received.items():
        lowered = name.lower()
        if lowered in by_name:
            raise BindingError(f"a field is sent twice under two spellings ({lowered[:40]!r})")
        if len(value) > MAX_VALUE:
            raise BindingError(f"field {name[:40]!r} is longer than {MAX_VALUE} characters")
        by_name[lowered] = value
    sent = {name.lower(): value for name, value in expected.items()}
    for name, value in sent.items():
        if name in EXCLUDED_FIELDS:
            continue
        if name not in by_name:
            raise BindingError(f"request field {name!r} is missing")
        if not _same_value(name, value, by_name[name]):
            raise BindingError(f"request field {name!r} came back changed")
    oid = _trim(sent.get("oid", by_name.get("oid", "")))
    return_oid = by_name.get("returnoid")
    if return_oid is not None and _trim(return_oid) and _trim(return_oid) != oid:
        raise BindingError("ReturnOid differs from oid")
    merchant = by_name.get("merchantid")
    client = sent.get("clientid")
    if merchant is not None and _trim(merchant) and client and _trim(merchant) != _trim(client):
        raise BindingError("merchantID differs from clientid")
    loose: list[str] = []
    approval = _approval(by_name)
    for name, value in by_name.items():
        if name in sent or name in EXCLUDED_FIELDS:
            continue
        text = _trim(value)
        if name in CMI_RESULT_FIELDS:
            shape = CMI_RESULT_FIELDS[name]
            fits = _FREE_TEXT.match(text) if shape is None else shape.match(text)
            if not fits:
                loose.append(f"{name} is not shaped as CMI sends it")
            elif approval and name in _ERRORS and text:
                loose.append(f"an approval carries {name}")
        elif name in MERCHANT_FIELDS or _ITEM_FIELD.match(name) or name.startswith("extra."):
            if text:
                loose.append(f"{name} was not sent but came back with a value")
        else:
            raise BindingError(f"field {name[:40]!r} is not one CMI sends")
    if not strong_rnd(_trim(sent.get("rnd", ""))):
        loose.append("the request's rnd has no small letter and digit")
    if loose:
        return Binding.LOOSE, "; ".join(loose)
    return Binding.STRICT, ""
