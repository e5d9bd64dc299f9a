"""The names CMI uses for its own result fields, in one place (guide §4.2.3, §4.2.5).

When CMI answers a payment (callback, or the shopper's return to ``okUrl``/``failUrl``) it
posts back every field the merchant sent, plus result fields of its own: ``Response``,
``ProcReturnCode``, ``TransId``... (the table of guide §4.2.3, and the further names its
§4.2.5 examples show, such as ``ErrCode``, ``SettleId``, ``EXTRA.HOSTMSG``).

- :data:`RESULT_FIELDS`: those names, lower-cased (CMI compares names without regard to
  case). A merchant's own field must never carry one of them, or the result CMI adds and
  the value the merchant sent could be confused; :func:`is_result_field` also covers every
  ``EXTRA.*`` name, which CMI reserves for its extras.
- :data:`RESULT_SHAPES`: the same names with the exact shape CMI gives each value, which
  the callback binding (:mod:`cmi_core.binding`) uses to tell a strict result.
- :data:`RESULT_LIMITS`: the maximum length the guide gives for a result field (§4.2.3
  "Format" column), by lower-cased name. Two lengths of the guide are not used: ``HASH``
  (it says 20, but a ver3 hash is 88 Base64 characters) and ``ClientIp`` (15 fits IPv4
  only); neither is listed.
- :data:`RESERVED_FIELDS`: names a merchant field may not take besides the results:
  ``hash`` and ``storeKey`` (the secret must never travel as a field).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "RESERVED_FIELDS",
    "RESULT_FIELDS",
    "RESULT_LIMITS",
    "RESULT_SHAPES",
    "is_result_field",
]

#: Result fields CMI sends (§4.2.3's table and the fields CMI adds in §4.2.5's examples,
#: with both spellings where the guide gives two), by lower-cased name, with the strict
#: shape of their value. ``None``: free text (letters, spaces and . , ' ’ ( ) - only).
RESULT_SHAPES: Final[Mapping[str, re.Pattern[str] | None]] = {
    name.lower(): (re.compile(shape) if shape is not None else None)
    for name, shape in (
        ("Response", r"^(?:Approved|Declined|Error)$"),
        ("ProcReturnCode", r"^[0-9A-Z]{1,2}$"),
        ("ErrCode", r"^[A-Z0-9]{1,8}-[0-9]{1,6}$|^$"),
        ("ErrMsg", None),
        ("ResponseError", None),
        ("EXTRA.TRXDATE", r"^(?:[0-9]{2}/[0-9]{2}/0?[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2})?$"),
        ("EXTRA.HOSTMSG", None),
        ("EXTRA.CARDBRAND", r"^[A-Z ]{0,32}$"),
        ("EXTRA.CARDISSUER", None),
        ("AuthCode", r"^[0-9A-Z]{0,6}$"),
        ("acqStan", r"^[0-9]{0,6}$"),
        ("HostRefNum", r"^[0-9]{0,12}$"),
        ("TransId", r"^[0-9A-Z-]{0,64}$"),
        ("TRANID", r"^[0-9]{0,20}$"),
        ("ClientIp", r"^[0-9A-Fa-f.:]{0,45}$"),
        ("ReturnOid", r"^[A-Za-z0-9._-]{0,64}$"),
        ("paymentType", r"^[A-Z]{0,16}$"),
        ("MaskedPan", r"^[0-9*X]{0,19}$"),
        ("cardHolderName", None),
        ("Ecom_Payment_Card_ExpDate_Year", r"^[0-9]{0,4}$"),
        ("Ecom_Payment_Card_ExpDate_Month", r"^[0-9]{0,2}$"),
        ("merchantID", r"^[A-Za-z0-9]{0,15}$"),
        ("ACQBIN", r"^[0-9]{0,11}$"),
        ("mdStatus", r"^[0-9]?$"),
        ("txstatus", r"^[A-Z]?$"),
        ("iReqCode", r"^[0-9]{0,2}$"),
        ("iReqDetail", None),
        ("vendorCode", None),
        ("PAResSyntaxOK", r"^[YN]?$"),
        ("PResSyntaxOK", r"^[YN]?$"),
        ("ParesVerified", r"^[YN]?$"),
        ("PResVerified", r"^[YN]?$"),
        ("eci", r"^[0-9]{0,2}$"),
        ("cavv", r"^(?:[A-Za-z0-9+/]{27}=)?$"),
        ("xid", r"^(?:[A-Za-z0-9+/]{27}=)?$"),
        ("retryXid", r"^(?:[A-Za-z0-9+/]{27}=)?$"),
        ("cavvAlgorithm", r"^[0-9]?$"),
        ("md", r"^[0-9A-F:]*(?:##[A-Za-z0-9]{0,15})?$"),
        ("Version", r"^[0-9.]{0,8}$"),
        ("sID", r"^[0-9]{0,2}$"),
        ("MdErrorMsg", None),
        ("SettleId", r"^[0-9]{0,8}$"),
        ("refreshtime", r"^[0-9]{0,6}$"),
        ("dsId", r"^[0-9]{0,2}$"),
        ("payResults.dsId", r"^[0-9]{0,2}$"),
        ("EXCHANGEAMOUNT", r"^(?:@@EXCHANGEAMOUNT@@)?$"),
        ("EXCHANGECURRENCY", r"^[0-9]{0,3}$"),
        ("CVVPresence", r"^[0-9]?$"),
        ("fatouratiExpress", r"^[0-9]?$"),
    )
}

#: CMI's result field names (guide §4.2.3 table and §4.2.5 examples), lower-cased.
RESULT_FIELDS: Final = frozenset({*RESULT_SHAPES, "hash"})

#: Maximum lengths of result fields as guide §4.2.3 gives them, by lower-cased name.
RESULT_LIMITS: Final[dict[str, int]] = {
    "procreturncode": 2,
    "extra.trxdate": 17,
    "authcode": 6,
    "acqstan": 6,
    "hostrefnum": 12,
    "transid": 64,
    "errmsg": 255,
    "returnoid": 64,
    "maskedpan": 19,
    "ecom_payment_card_expdate_year": 2,
    "ecom_payment_card_expdate_month": 2,
    "merchantid": 15,
    "acqbin": 6,
    "mdstatus": 1,
    "txstatus": 1,
    "ireqcode": 2,
    "paressyntaxok": 1,
    "paresverified": 1,
    "eci": 2,
    "cavv": 28,
    "xid": 28,
    "cavvalgorithm": 1,
    "version": 3,
    "sid": 1,
    "mderrormsg": 512,
}

#: Names a merchant field may not take besides the results (compared lower-cased).
RESERVED_FIELDS: Final = frozenset({"hash", "storekey"})


def is_result_field(name: str) -> bool:
    """True for a name CMI uses for its results: :data:`RESULT_FIELDS` or ``EXTRA.*``."""
    lowered = name.lower()
    return lowered in RESULT_FIELDS or lowered.startswith("extra.")
