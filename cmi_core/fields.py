"""The names CMI uses for its own result fields, in one place (guide §4.2.3, §4.2.5).

When CMI answers a payment (callback, or the shopper's return to ``okUrl``/``failUrl``) it
posts back every field the merchant sent, plus result fields of its own: ``Response``,
``ProcReturnCode``, ``TransId``... (the table of guide §4.2.3, and the further names its
§4.2.5 examples show, such as ``ErrCode``, ``SettleId``, ``EXTRA.HOSTMSG``).

- :data:`RESULT_FIELDS`: those names, lower-cased (CMI compares names without regard to
  case). A merchant's own field must never carry one of them, or the result CMI adds and
  the value the merchant sent could be confused; :func:`is_result_field` also covers every
  ``EXTRA.*`` name, which CMI reserves for its extras.
- :data:`RESULT_LIMITS`: the maximum length the guide gives for a result field (§4.2.3
  "Format" column), by lower-cased name. Two lengths of the guide are not used: ``HASH``
  (it says 20, but a ver3 hash is 88 Base64 characters) and ``ClientIp`` (15 fits IPv4
  only); neither is listed.
- :data:`RESERVED_FIELDS`: names a merchant field may not take besides the results:
  ``hash`` and ``storeKey`` (the secret must never travel as a field).
"""

from __future__ import annotations

from typing import Final

__all__ = ["RESERVED_FIELDS", "RESULT_FIELDS", "RESULT_LIMITS", "is_result_field"]

#: CMI's result field names (guide §4.2.3 table and §4.2.5 examples), lower-cased.
RESULT_FIELDS: Final = frozenset(
    name.lower()
    for name in (
        # guide §4.2.3
        "Response",
        "ProcReturnCode",
        "EXTRA.TRXDATE",
        "AuthCode",
        "acqStan",
        "HostRefNum",
        "TransId",
        "ErrMsg",
        "ClientIp",
        "ReturnOid",
        "paymentType",
        "EXTRA.CARDBRAND",
        "MaskedPan",
        "cardHolderName",
        "Ecom_Payment_Card_ExpDate_Year",
        "Ecom_Payment_Card_ExpDate_Month",
        "EXTRA.CARDISSUER",
        "merchantID",
        "ACQBIN",
        "mdStatus",
        "txstatus",
        "iReqCode",
        "iReqDetail",
        "vendorCode",
        "PAResSyntaxOK",
        "ParesVerified",
        "eci",
        "cavv",
        "xid",
        "cavvAlgorithm",
        "md",
        "Version",
        "sID",
        "MdErrorMsg",
        "HASH",
        # further result names in the guide's §4.2.5 examples
        "ErrCode",
        "EXTRA.HOSTMSG",
        "SettleId",
        "TRANID",
        "PResSyntaxOK",
        "PResVerified",
        "payResults.dsId",
        "dsId",
        "CVVPresence",
        "ResponseError",
        "retryXid",
        "EXCHANGEAMOUNT",
        "EXCHANGECURRENCY",
    )
)

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
