"""The result fields CMI adds to a payment request (guide §4.2.3), as §4.2.5 shows them.

:func:`result_fields` builds what the callback, the okUrl/failUrl POST and the result page
carry: every request field except its ``hash``, then ``Response``, ``ProcReturnCode``,
``AuthCode``, ``HostRefNum``, ``TransId``, ``EXTRA.TRXDATE`` (``dd/mm/0yyyy hh:mm:ss``),
``MaskedPan`` (``400000***7190``), ``mdStatus``, the 3-D Secure fields CMI leaves empty
here (``iReqCode``, ``PResSyntaxOK``... spelled as the §4.2.5 example spells them), and
``EXTRA.HOSTMSG``, ``SettleId``. :func:`cmi_core.sandbox.fields.sign` then appends
``HASH`` (``ver3`` with the merchant's store key, guide §4.2.4). Identifiers imitate CMI's
shapes: ``TransId`` like ``17327P7GH13718``, ``HostRefNum`` 12 digits ending with the
6-digit ``acqStan``.
"""

from __future__ import annotations

import base64
import random
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cmi_core.codes import lookup
from cmi_core.sandbox.cards import CardCheck, CardEntry, Outcome
from cmi_core.sandbox.clock import local
from cmi_core.sandbox.fields import Fields, field

__all__ = [
    "ACQBIN",
    "Ids",
    "api_trx_date",
    "err_msg",
    "host_msg",
    "new_ids",
    "result_fields",
    "trx_date",
]

#: The acquirer BIN the emulator reports (the guide's example value, §4.2.5).
ACQBIN = "439218"

_rng = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class Ids:
    """The identifiers of one transaction."""

    trans_id: str
    host_ref_num: str
    acq_stan: str
    auth_code: str


def new_ids(now: datetime) -> Ids:
    moment = local(now)
    letters = string.ascii_uppercase + string.digits
    trans_id = (
        f"{moment:%y}{moment.timetuple().tm_yday:03d}{string.ascii_uppercase[moment.hour]}"
        + "".join(_rng.choice(letters) for _ in range(3))
        + f"{_rng.randrange(100000):05d}"
    )
    stan = _rng.randrange(1, 1000000)
    host_ref = f"{moment.year % 10}{moment.timetuple().tm_yday:03d}{moment.hour:02d}{stan:06d}"
    return Ids(trans_id, host_ref, str(stan), f"{_rng.randrange(1000000):06d}")


def trx_date(now: datetime) -> str:
    """``EXTRA.TRXDATE``: ``23/11/02017 15:57:06`` (guide §4.2.3 "jj/mm/0aaaa hh24:mi:ss")."""
    moment = local(now)
    return f"{moment:%d/%m}/0{moment:%Y} {moment:%H:%M:%S}"


def api_trx_date(now: datetime) -> str:
    """The XML API's ``Extra/TRXDATE``: ``20230910 22:36:30`` (docs/protocol.md#the-xml-api)."""
    return f"{local(now):%Y%m%d %H:%M:%S}"


def err_msg(outcome: Outcome) -> str:
    """CMI's English text for the outcome's code (guide §6.2), empty when approved."""
    if outcome.approved:
        return ""
    row = lookup(outcome.proc_return_code, outcome.err_code)
    return row.en if row is not None else "Failed operation"


def _b64(size: int) -> str:
    return base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def _three_d_secure(outcome: Outcome, check: CardCheck | None, client_id: str) -> Fields:
    ran = outcome.md_status in ("0", "1")
    brand = check.brand if check else ""
    eci = ("05" if brand == "VISA" else "02") if outcome.md_status == "1" else ""
    prefix = check.masked_pan[:6] if check else ""
    md = (
        f"{prefix}:{secrets.token_hex(32).upper()}:{_rng.randrange(10000):04d}:##{client_id}"
        if ran
        else ""
    )
    return [
        ("mdStatus", outcome.md_status),
        ("mdErrorMsg", outcome.md_error),
        ("txstatus", {"1": "Y", "0": "N"}.get(outcome.md_status, "")),
        # The ACS's own error report and the PARes checks: empty, as in the §4.2.5 example
        # of an authenticated payment (the emulator has no ACS that could fail).
        ("iReqCode", ""),
        ("iReqDetail", ""),
        ("vendorCode", ""),
        ("PResSyntaxOK", ""),  # §4.2.3's table says PAResSyntaxOK; §4.2.5 shows this name
        ("PResVerified", ""),  # §4.2.3: ParesVerified
        ("eci", eci),
        ("cavv", _b64(20) if outcome.md_status == "1" else ""),
        ("cavvAlgorithm", "2" if outcome.md_status == "1" else ""),
        ("xid", _b64(20) if ran else ""),
        ("md", md),
        ("version", ""),  # §4.2.3: Version (MPI version); empty in §4.2.5
        ("SID", ""),  # §4.2.3: sID (scheme id); empty in §4.2.5
    ]


def host_msg(outcome: Outcome) -> str:
    """``EXTRA.HOSTMSG``: ``APPROVED`` (§4.2.5), the decline's text from the authorisation
    host, empty when the host was never asked (3-D Secure or platform errors)."""
    if outcome.approved:
        return "APPROVED"
    if outcome.response == "Declined":
        return err_msg(outcome).rstrip(".").upper()
    return ""


def result_fields(
    request: Sequence[tuple[str, str]],
    outcome: Outcome,
    *,
    ids: Ids,
    now: datetime,
    client_ip: str,
    client_id: str,
    check: CardCheck | None = None,
    entry: CardEntry | None = None,
) -> Fields:
    """Request fields (without ``hash``) plus the §4.2.3 result fields, unsigned."""
    oid = field(request, "oid")
    declined = outcome.response == "Declined"
    result: Fields = [
        ("Response", outcome.response),
        ("ProcReturnCode", outcome.proc_return_code),
        ("AuthCode", ids.auth_code if outcome.approved else ""),
        ("HostRefNum", ids.host_ref_num if outcome.approved or declined else ""),
        ("acqStan", ids.acq_stan if outcome.approved or declined else ""),
        ("TransId", ids.trans_id),
        ("ReturnOid", oid),
        ("EXTRA.TRXDATE", trx_date(now)),
        ("EXTRA.HOSTMSG", host_msg(outcome)),
        ("ErrMsg", err_msg(outcome)),
    ]
    if not outcome.approved:
        result.append(("ErrCode", outcome.err_code))
    result += [
        ("clientIp", client_ip),
        ("paymentType", "CARD"),
        ("merchantID", client_id),
        ("ACQBIN", ACQBIN),
        ("SettleId", "1" if outcome.approved else ""),  # §4.2.5 shows 1 on an approval
    ]
    if check is not None and entry is not None:
        result += [
            ("EXTRA.CARDBRAND", check.brand),
            ("EXTRA.CARDISSUER", check.issuer),
            ("MaskedPan", check.masked_pan),
            ("Ecom_Payment_Card_ExpDate_Year", entry.year2),
            ("Ecom_Payment_Card_ExpDate_Month", entry.month.strip()),
            ("cardHolderName", entry.holder.strip()),
        ]
    result += _three_d_secure(outcome, check, client_id)
    names = {name.lower() for name, _ in result} | {"hash"}
    kept = [(name, value) for name, value in request if name.lower() not in names]
    return kept + result
