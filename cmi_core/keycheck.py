"""Is the store key the one CMI holds? A signed request to the gateway says (guide §4.1.3).

The store key never travels: it is the HMAC key of the payment form's ``hash``
(guide §4.1.3). The only way to learn whether CMI holds the same key is to send CMI a
form it signed: :func:`check_store_key` builds a complete, signed payment request for a
made-up order (the smallest amount, an ``oid`` of its own, ``sessiontimeout`` of 30 s) and
POSTs it to the gateway (``config.gateway_url``) as a shopper's browser would, without
following redirects. CMI checks the hash before it shows its card form; a wrong hash is
refused with the code ``3D-1004`` (guide §6.2, "Wrong security code", the most common
first-integration error). So:

- the answer names ``3D-1004``: the store key is **wrong** (or not the one entered in the
  Merchant Center);
- HTTP 200 naming no error code (``3D-…``, ``CORE-…``, ``RULE-…``): CMI showed its payment
  page, so it verified the hash: the key is **right**;
- anything else (another code, such as an unknown client id; a redirect; a server error;
  no answer): **unknown**, with what was seen.

Nothing is charged: no card is entered, the page is left and its session expires. What
is sent holds the hash, never the key; what this returns holds the HTTP status and CMI's
codes, never a value of the form. ``cmi sandbox`` behaves the same way (a wrong hash gives
its ``3D-1004`` page), and the tests run this against it.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

import requests

from cmi_core.errors import ValidationError
from cmi_core.request import PaymentOrder, build_payment_request

if TYPE_CHECKING:
    from cmi_core.config import CMIConfig

__all__ = ["WRONG_KEY_CODE", "StoreKeyCheck", "StoreKeyVerdict", "check_store_key"]

#: Guide §6.2: "Rejet de la plateforme à cause d'erreur de calcul du code de hachage".
WRONG_KEY_CODE = "3D-1004"
#: CMI's platform codes as the guide's §6.2 table writes them.
_CODE = re.compile(r"\b(?:3D|CORE|RULE|HPP|ISO8583)-\d{4}\b")
#: A gateway page is a few tens of kilobytes; more is not read.
_MAX_BODY = 512 * 1024


class StoreKeyVerdict(StrEnum):
    RIGHT = "right"  # CMI verified the hash and showed its payment page
    WRONG = "wrong"  # CMI refused the hash (3D-1004)
    UNKNOWN = "unknown"  # CMI's answer says neither


@dataclass(frozen=True, slots=True)
class StoreKeyCheck:
    """What the gateway answered: the verdict, the HTTP status (None: no answer), CMI's
    codes found in the answer, and ``problem`` (no answer: what happened, for people)."""

    verdict: StoreKeyVerdict
    http_status: int | None = None
    codes: tuple[str, ...] = ()
    problem: str = ""


def check_store_key(
    config: CMIConfig,
    *,
    ok_url: str,
    fail_url: str,
    session: requests.Session | None = None,
) -> StoreKeyCheck:
    """POST a signed payment form for a made-up order to CMI's gateway; never raises.

    ``ok_url`` and ``fail_url``: the shop's absolute http(s) addresses (CMI requires them,
    guide §4.1.1; no shopper will be sent there). Each wait is bounded by
    ``config.http_timeout`` and the whole answer by twice that.
    """
    order = PaymentOrder(
        oid=f"keycheck-{secrets.token_hex(8)}",
        amount=Decimal("1.00"),
        email="keycheck@example.invalid",
        billing_name="Store key check",
        ok_url=ok_url,
        fail_url=fail_url,
        description="Store key check: no card is entered, nothing is charged",
        session_timeout=30,
    )
    try:
        form = build_payment_request(config, order).fields
    except ValidationError as exc:  # names the field and the rule, never a value
        return StoreKeyCheck(StoreKeyVerdict.UNKNOWN, problem=f"{exc.field}: {exc.rule}")
    http = session if session is not None else requests.Session()
    deadline = time.monotonic() + 2 * config.http_timeout
    try:
        with http.post(
            config.gateway_url,
            data=dict(form),
            timeout=config.http_timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            status = response.status_code
            body = bytearray()
            for chunk in response.iter_content(chunk_size=16384):
                body += chunk
                if len(body) >= _MAX_BODY or time.monotonic() > deadline:
                    break
    except requests.RequestException as exc:
        return StoreKeyCheck(StoreKeyVerdict.UNKNOWN, problem=type(exc).__name__)
    finally:
        if session is None:
            http.close()
    text = bytes(body[:_MAX_BODY]).decode("utf-8", "replace")
    codes = tuple(dict.fromkeys(_CODE.findall(text)))
    if WRONG_KEY_CODE in codes:
        return StoreKeyCheck(StoreKeyVerdict.WRONG, status, codes)
    if status == 200 and not codes:
        return StoreKeyCheck(StoreKeyVerdict.RIGHT, status, codes)
    return StoreKeyCheck(StoreKeyVerdict.UNKNOWN, status, codes)
