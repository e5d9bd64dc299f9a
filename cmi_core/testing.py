"""Helpers for tests of code that receives CMI's callbacks: sign them, tamper with them.

Made public so that the adapters' tests (and a merchant's own) build callbacks exactly as
CMI signs them (guide §4.2.4) instead of hand-writing hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from cmi_core.hashing import EXCLUDED_FIELDS, compute_hash
from cmi_core.money import format_amount, get_currency

__all__ = ["make_callback", "sign", "tamper"]


def sign(fields: Mapping[str, str], store_key: str) -> dict[str, str]:
    """The fields with ``HASH`` set as CMI computes it (any previous hash replaced)."""
    unsigned = {k: v for k, v in fields.items() if k.lower() not in EXCLUDED_FIELDS}
    return {**unsigned, "HASH": compute_hash(unsigned, store_key)}


def tamper(fields: Mapping[str, str], **changes: str) -> dict[str, str]:
    """The fields with some values changed and the old ``HASH`` kept (a forgery)."""
    return {**fields, **changes}


def make_callback(
    store_key: str,
    *,
    oid: str,
    amount: Decimal,
    currency: str = "504",
    approved: bool = True,
    proc_return_code: str | None = None,
    err_code: str = "",
    trans_id: str = "25327ABCD1234",
    request_fields: Mapping[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """A signed callback like guide §4.2.5's: the request's fields plus the result fields.

    ``request_fields`` (e.g. ``PaymentRequest.as_dict()``) are echoed back as CMI does,
    without their ``hash``; ``extra`` adds or overrides fields (``EXTRA.CARDBRAND=...``
    cannot be a keyword: pass a mapping through ``request_fields`` for such names).
    """
    code = proc_return_code or ("00" if approved else "05")
    fields: dict[str, str] = {
        k: v for k, v in (request_fields or {}).items() if k.lower() not in EXCLUDED_FIELDS
    }
    fields.update(
        {
            "oid": oid,
            "ReturnOid": oid,
            "amount": format_amount(amount, get_currency(currency)),
            "currency": currency,
            "Response": "Approved" if code == "00" else ("Error" if code == "99" else "Declined"),
            "ProcReturnCode": code,
            "TransId": trans_id,
            "AuthCode": "746579" if code == "00" else "",
            "HostRefNum": "732715056928",
            "acqStan": "056928",
            "MaskedPan": "400000***7190",
            "EXTRA.CARDBRAND": "VISA",
            "EXTRA.TRXDATE": "23/11/02026 15:57:06",
            "mdStatus": "1",
            "ErrMsg": "" if code == "00" else "Declined",
            "ErrCode": err_code if code != "00" else "",
            "paymentType": "CARD",
        }
    )
    fields.update(extra)
    return sign(fields, store_key)
