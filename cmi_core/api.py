"""The server-to-server CC5 XML API: capture, void, refund, status, history.

The API is described in ``docs/protocol.md#the-xml-api`` (CMI's guide does not cover it).

CMI runs on Asseco's EST/"Nestpay" gateway, whose API takes one XML document per call,
POSTed to ``/fim/api`` with the API user's credentials (an option CMI sells separately,
distinct from the store key)::

    <CC5Request><Name/><Password/><ClientId/><Type>PostAuth|Void|Credit</Type>
      <OrderId/><Total/><Currency/></CC5Request>

and answers a ``<CC5Response>`` (OrderId, GroupId, Response, AuthCode, HostRefNum,
ProcReturnCode, TransId, ErrMsg, ``<Extra>``). The guide itself only says that capture and
refund can be done "via les APIs" (guide §3.1); the states they move an order between are
guide §5 (PRE, POST, RFND, VOID).

Behaviour worth knowing:

- Requests: unused elements are omitted, every value is XML-escaped, amounts are formatted
  by :func:`cmi_core.money.format_amount`, currencies sent as ISO 4217 numeric codes.
  The body is sent as ``text/xml; charset=utf-8``, asking for an uncompressed answer.
- One deadline per call: ``config.api_deadline`` (default 30 s) bounds the whole call,
  connecting, sending, every read, and for the queries every retry and the waits between
  them. ``config.http_timeout`` (default 20 s) still bounds each single wait, but a
  server that drips its answer a byte at a time, always inside that timeout, is cut off
  at the deadline (see :meth:`CMIClient._post_within`). On a capture, void or refund a
  deadline hit means CMI may have acted: the error has ``retryable=False`` and says to
  check the order's status first; on a query, ``retryable=True``.
- Redirects are never followed (the request carries the API password): a 3xx answer is
  an error naming its status, not retried.
- Answers are read in chunks up to :data:`MAX_RESPONSE_BYTES` (1 MiB; CMI's answers are a
  few KiB): a larger one, declared or streamed, or a gzip answer inflating past it, is
  refused there, unread beyond the cap, not retried.
- Lengths (guide §4.2.3 where it gives one, ours otherwise): values that identify a
  transaction or decide what happened to the money (``OrderId``, ``GroupId``, ``TransId``
  64, ``HostRefNum`` 12, ``AuthCode`` 6, ``ProcReturnCode`` 2, ``Response`` 16,
  ``ERRORCODE`` 32; in ``<Extra>``: ``ORD_ID``, ``TRANS_ID``, ``TRANS_STAT``, amounts,
  ``TRXn`` lines and their cells...) are never cut: one over its length makes the whole
  answer an :class:`~cmi_core.errors.APITransportError` naming the field and the limit,
  never the value. Text only shown to people (``ErrMsg`` and any other ``<Extra>``
  value) is cut to 255 characters (``PAN`` to 19, ``MaskedPan``'s length). So no value
  from CMI reaches a database or a page longer than the guide allows.
- Responses are parsed with ``defusedxml`` with DTDs, entities and external references
  refused, so an "XML bomb" is an unreadable answer, never a parsed one.
- ``Response`` other than ``Approved`` raises :class:`~cmi_core.errors.APIError` with
  ``response``, ``proc_return_code``, ``err_msg`` and ``error_code`` (``Extra/ERRORCODE``)
  filled in. "No record found" (``ProcReturnCode`` 99 and an ErrMsg saying so) raises
  :class:`OrderNotFoundError`, a subclass: asking for an order CMI never saw is an answer, but
  one a caller must not mistake for a status.
- No usable answer (timeout, connection error, non-2xx HTTP, HTML error page, malformed
  XML, a root other than ``CC5Response``) raises :class:`~cmi_core.errors.APITransportError`
  chained with ``raise ... from`` the cause.
- Retries: only the read-only queries (:meth:`CMIClient.status`, :meth:`CMIClient.history`)
  are repeated, at most ``retries`` times (default 2) with an exponential backoff
  (``backoff`` x 1, 2, 4... seconds), after a transport error that may pass (timeout,
  connection error, HTTP 5xx or 429, unreadable body). Capture, void and refund move money
  and are sent exactly once: after a transport error their outcome is unknown, the error
  has ``retryable=False`` and says to check the order's status first. The one exception
  to "unknown" is a connect timeout: nothing was sent, ``retryable=True``, still not
  retried automatically.
- Secrets: the API password (and the request body that holds it) never appears in a
  message, an attribute, a ``repr`` or a log line; requests' exceptions are chained with
  their ``request`` (whose body holds the password) removed.
- Logging: ``logging.getLogger("cmi_core.api")`` at DEBUG, one line per attempt outcome
  (operation, order id, outcome).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Final

import requests
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from urllib3.exceptions import HTTPError as Urllib3Error  # requests' own transport
from urllib3.exceptions import ReadTimeoutError

from cmi_core.config import CMIConfig
from cmi_core.errors import APIError, APITransportError, ConfigurationError, ValidationError
from cmi_core.fields import RESULT_LIMITS
from cmi_core.money import Currency, format_amount, from_minor_units, get_currency

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

__all__ = [
    "APIResult",
    "CMIClient",
    "HistoryTransaction",
    "OrderHistory",
    "OrderNotFoundError",
    "OrderState",
    "OrderStatus",
    "order_state",
]

_log = logging.getLogger("cmi_core.api")

CONTENT_TYPE: Final = "text/xml; charset=utf-8"
#: The largest answer read from CMI's API, in bytes (after decompression); CMI's XML
#: answers are a few KiB. A larger one is refused, unread beyond this.
MAX_RESPONSE_BYTES: Final = 1024 * 1024
_CHUNK = 16 * 1024
_MAX_OID = 64  # guide §4.1.1: oid, alphanumeric (64)
#: Fields of ``<CC5Response>`` that identify a transaction or decide what happened to the
#: money, with their longest accepted value: longer, the answer is refused, never cut.
#: Lengths from guide §4.2.3 where it names the field; ours (with room) otherwise.
_DECIDING: Final[dict[str, int]] = {
    "OrderId": RESULT_LIMITS["returnoid"],
    "GroupId": RESULT_LIMITS["returnoid"],
    "Response": 16,  # Approved, Declined or Error
    "AuthCode": RESULT_LIMITS["authcode"],
    "HostRefNum": RESULT_LIMITS["hostrefnum"],
    "ProcReturnCode": RESULT_LIMITS["procreturncode"],
    "TransId": RESULT_LIMITS["transid"],
    "ERRORCODE": 32,  # e.g. CORE-2008
}
#: The same for ``<Extra>`` children (ORDERSTATUS, ORDERHISTORY); ``TRXn`` lines too.
_EXTRA_DECIDING: Final[dict[str, int]] = {
    "ORD_ID": RESULT_LIMITS["returnoid"],
    "TRANS_ID": RESULT_LIMITS["transid"],
    "HOST_REF_NUM": RESULT_LIMITS["hostrefnum"],
    "AUTH_CODE": RESULT_LIMITS["authcode"],
    "PROC_RET_CD": RESULT_LIMITS["procreturncode"],
    "MDSTATUS": 2,
    "TRANS_STAT": 8,
    "CHARGE_TYPE_CD": 8,
    "CAPTURE_AMT": 18,
    "ORIG_TRANS_AMT": 18,
    "TRXCOUNT": 4,
    "SETTLEID": 32,
    "ERRORCODE": 32,
}
_MAX_TRX_LINE = 512
#: ``TRXn`` cells that decide money, by position, with their longest accepted value.
_TRX_CELLS: Final = {
    0: ("type", 8),
    1: ("status", 8),
    7: ("host ref", RESULT_LIMITS["hostrefnum"]),
    8: ("auth code", RESULT_LIMITS["authcode"]),
    9: ("proc code", RESULT_LIMITS["procreturncode"]),
    10: ("trans id", RESULT_LIMITS["transid"]),
}
#: Free text only shown to people (``ErrMsg``, and every ``<Extra>`` child not listed
#: above) is cut to this length (``ErrMsg``'s, guide §4.2.3).
_MAX_TEXT = RESULT_LIMITS["errmsg"]
#: ``<Extra>`` text with a shorter length of its own (guide §4.2.3 ``MaskedPan``).
_EXTRA_TEXT: Final = {"PAN": RESULT_LIMITS["maskedpan"]}
_MAX_TAG = 64
# Characters XML 1.0 cannot carry at all, even escaped.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_FOUND = re.compile(r"no\s+record|not\s+found", re.IGNORECASE)
_DATE_FORMATS = (
    "%Y%m%d %H:%M:%S",  # Extra/TRXDATE: 20230910 22:36:30
    "%Y-%m-%d %H:%M:%S.%f",  # ORDERSTATUS *_DTTM: 2023-09-10 22:36:30.155
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",  # guide §4.2.3 EXTRA.TRXDATE on callbacks, its "0" dropped
)


class OrderNotFoundError(APIError):
    """CMI has no record of this order (``ProcReturnCode`` 99, "No record found for ...")."""


class OrderState(StrEnum):
    """An order's state as CMI's Merchant Center names it (guide §5), plus three more.

    ``PRE`` pre-authorised (funds held), ``POST`` captured, ``RFND`` refunded, ``VOID``
    cancelled; ``PENDING`` not finished yet, ``ERROR`` failed or declined, ``UNKNOWN`` a
    ``TRANS_STAT`` this library does not know (the raw value is kept beside it).
    """

    PRE = "PRE"
    POST = "POST"
    RFND = "RFND"
    VOID = "VOID"
    PENDING = "PENDING"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


def order_state(trans_stat: str, charge_type: str, captured: Decimal | None) -> OrderState:
    """Map ORDERSTATUS/ORDERHISTORY fields to an :class:`OrderState` (docs/protocol.md#the-xml-api).

    ==========================  ==========================  ===========
    ``TRANS_STAT``              other fields                state
    ==========================  ==========================  ===========
    ``CNCL``, ``V``                                         ``VOID``
    ``PN``                                                  ``PENDING``
    ``D``, ``ERR``                                          ``ERROR``
    ``A``, ``C``, ``S``         ``CHARGE_TYPE_CD`` ``C``    ``RFND``
    ``A``, ``C``, ``S``         ``CAPTURE_AMT`` > 0         ``POST``
    ``A``, ``C``, ``S``         ``CAPTURE_AMT`` 0 or empty  ``PRE``
    anything else                                           ``UNKNOWN``
    ==========================  ==========================  ===========

    ``CHARGE_TYPE_CD`` is ``S`` for a sale (pre-authorisation, capture) and ``C`` for a
    credit (refund). Values are compared without regard to case or surrounding spaces.
    """
    stat = trans_stat.strip().upper()
    if stat in ("CNCL", "V"):
        return OrderState.VOID
    if stat == "PN":
        return OrderState.PENDING
    if stat in ("D", "ERR"):
        return OrderState.ERROR
    if stat in ("A", "C", "S"):
        if charge_type.strip().upper() == "C":
            return OrderState.RFND
        if captured is not None and captured > 0:
            return OrderState.POST
        return OrderState.PRE
    return OrderState.UNKNOWN


@dataclass(frozen=True, slots=True)
class APIResult:
    """One ``<CC5Response>`` (docs/protocol.md#the-xml-api), typed.

    ``operation`` is what was asked (``PostAuth``, ``Void``, ``Credit``, ``ORDERSTATUS``,
    ``ORDERHISTORY``); ``error_code`` is ``Extra/ERRORCODE`` (e.g. ``CORE-2008``);
    ``trx_date`` is ``Extra/TRXDATE`` parsed, in CMI's local time, without a zone (CMI
    sends none); ``extra`` holds every ``<Extra>`` child as text (typed read-only; a plain
    dict so that :func:`dataclasses.asdict` works).
    """

    operation: str
    order_id: str
    group_id: str
    response: str
    approved: bool
    auth_code: str
    host_ref_num: str
    proc_return_code: str
    trans_id: str
    err_msg: str
    error_code: str
    settle_id: str
    trx_date: datetime | None
    extra: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """The answer to an ORDERSTATUS query (docs/protocol.md#the-xml-api), typed.

    ``state`` is mapped by :func:`order_state` from ``trans_stat`` (``TRANS_STAT``),
    ``charge_type`` (``CHARGE_TYPE_CD``) and ``captured_amount``. Amounts come from minor
    units (``CAPTURE_AMT`` ``101`` -> ``Decimal("1.01")``) in ``currency``; ``amount`` is
    ``ORIG_TRANS_AMT``. Times are CMI's local time without a zone. ``masked_pan`` is
    ``PAN``, ``proc_return_code`` the transaction's ``PROC_RET_CD``. ``result`` is the
    whole response; ``extra`` its raw ``<Extra>``.
    """

    order_id: str
    state: OrderState
    trans_stat: str
    charge_type: str
    currency: Currency
    amount: Decimal | None
    captured_amount: Decimal | None
    auth_code: str
    host_ref_num: str
    trans_id: str
    proc_return_code: str
    masked_pan: str
    md_status: str
    auth_time: datetime | None
    capture_time: datetime | None
    void_time: datetime | None
    result: APIResult

    @property
    def extra(self) -> Mapping[str, str]:
        return self.result.extra


@dataclass(frozen=True, slots=True)
class HistoryTransaction:
    """One ``TRXn`` line of an ORDERHISTORY answer (tab-separated, docs/protocol.md#the-xml-api)."""

    charge_type: str
    trans_stat: str
    state: OrderState
    amount: Decimal | None
    captured_amount: Decimal | None
    auth_time: datetime | None
    capture_time: datetime | None
    void_time: datetime | None
    host_ref_num: str
    auth_code: str
    proc_return_code: str
    trans_id: str
    raw: str

    @property
    def approved(self) -> bool:
        return self.proc_return_code == "00"


@dataclass(frozen=True, slots=True)
class OrderHistory:
    """The answer to an ORDERHISTORY query: the order's transactions in CMI's order."""

    order_id: str
    currency: Currency
    transactions: tuple[HistoryTransaction, ...]
    result: APIResult

    @property
    def extra(self) -> Mapping[str, str]:
        return self.result.extra


_WHAT = {
    "PostAuth": "capture",
    "Void": "void",
    "Credit": "refund",
    "ORDERSTATUS": "status query",
    "ORDERHISTORY": "history query",
}
#: The operations that move money: sent once, their lost answer an unknown outcome.
_MONEY_OPERATIONS = frozenset({"PostAuth", "Void", "Credit"})


class CMIClient:
    """Client of CMI's CC5 XML API for one merchant (docs/protocol.md#the-xml-api).

    ``session`` lets the caller share a :class:`requests.Session` (connection pooling,
    proxies, test doubles); one is created otherwise and closed by :meth:`close`.
    ``retries`` and ``backoff`` bound the retries of the read-only queries; ``sleep`` is
    what waits between them (tests pass a recorder).
    """

    def __init__(
        self,
        config: CMIConfig,
        session: requests.Session | None = None,
        *,
        retries: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0:
            raise ConfigurationError("retries", "zero or more")
        if backoff < 0:
            raise ConfigurationError("backoff", "zero or more seconds")
        self._config = config
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"CMIClient(client_id={self._config.client_id!r}, api_url={self._config.api_url!r})"

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> CMIClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- operations ---------------------------------------------------------------------

    def capture(
        self, oid: str, amount: Decimal | None = None, currency: Currency | str | None = None
    ) -> APIResult:
        """Capture a pre-authorised order (``PostAuth``; guide §5.2 "POST").

        Without ``amount`` CMI captures the authorised amount; with one (``Total``), that
        much, which may be less (partial capture). ``currency`` (default the config's)
        sets the decimals of ``Total``. Sent once; never retried.
        """
        fields: dict[str, str] = {}
        if amount is not None:
            fields["Total"] = format_amount(amount, self._currency(currency), "amount")
        return self._operate("PostAuth", oid, fields)

    def void(self, oid: str) -> APIResult:
        """Cancel a pre-authorisation or a same-day transaction (``Void``; guide §5.4)."""
        return self._operate("Void", oid, {})

    def refund(
        self, oid: str, amount: Decimal, currency: Currency | str | None = None
    ) -> APIResult:
        """Refund a captured order, fully or partly (``Credit``; guide §5.3 "RFND").

        ``Total`` is ``amount`` formatted for ``currency`` (default the config's), sent
        with ``Currency``. Sent once; never retried.
        """
        cur = self._currency(currency)
        fields = {"Total": format_amount(amount, cur, "amount"), "Currency": cur.numeric}
        return self._operate("Credit", oid, fields)

    def status(
        self, oid: str, currency: Currency | str | None = None, *, within: float | None = None
    ) -> OrderStatus:
        """Query an order's status (``<Extra><ORDERSTATUS>QUERY</ORDERSTATUS></Extra>``).

        ``currency`` (default the config's) converts the minor-unit amounts. Raises
        :class:`OrderNotFoundError` when CMI has no such order. Retried on transport errors.
        ``within``: seconds this call may take in all, when less than ``api_deadline`` (a
        caller with its own deadline, sharing it between calls); zero or less (or not a
        number): the call fails at once, nothing sent.
        """
        cur = self._currency(currency)
        result = self._query("ORDERSTATUS", oid, within)
        extra = result.extra
        captured = self._minor(extra, "CAPTURE_AMT", cur)
        trans_stat = extra.get("TRANS_STAT", "")
        charge_type = extra.get("CHARGE_TYPE_CD", "")
        return OrderStatus(
            order_id=extra.get("ORD_ID", "") or result.order_id or oid,
            state=order_state(trans_stat, charge_type, captured),
            trans_stat=trans_stat,
            charge_type=charge_type,
            currency=cur,
            amount=self._minor(extra, "ORIG_TRANS_AMT", cur),
            captured_amount=captured,
            auth_code=extra.get("AUTH_CODE", "") or result.auth_code,
            host_ref_num=extra.get("HOST_REF_NUM", "") or result.host_ref_num,
            trans_id=extra.get("TRANS_ID", "") or result.trans_id,
            proc_return_code=extra.get("PROC_RET_CD", ""),
            masked_pan=extra.get("PAN", ""),
            md_status=extra.get("MDSTATUS", ""),
            auth_time=_parse_date(extra.get("AUTH_DTTM", "")),
            capture_time=_parse_date(extra.get("CAPTURE_DTTM", "")),
            void_time=_parse_date(extra.get("VOID_DTTM", "")),
            result=result,
        )

    def history(
        self, oid: str, currency: Currency | str | None = None, *, within: float | None = None
    ) -> OrderHistory:
        """List an order's transactions (``<Extra><ORDERHISTORY>QUERY</ORDERHISTORY></Extra>``).

        ``Extra/TRXCOUNT`` gives the count and ``TRX1`` ... ``TRXn`` the transactions, each
        a tab-separated line: type, status, amount, capture amount, auth time, capture
        time, void time, host ref, auth code, proc code, trans id (amounts in minor units
        of ``currency``, default the config's). Raises :class:`OrderNotFoundError` when CMI has
        no such order. Retried on transport errors. ``within`` as for :meth:`status`.
        """
        cur = self._currency(currency)
        result = self._query("ORDERHISTORY", oid, within)
        lines: list[str] = []
        while (line := result.extra.get(f"TRX{len(lines) + 1}")) is not None:
            lines.append(line)
        count_text = result.extra.get("TRXCOUNT", "").strip()
        if count_text and (not count_text.isdigit() or int(count_text) != len(lines)):
            raise APITransportError(
                f"CMI's history of order {oid} is unreadable: TRXCOUNT is {count_text!r} "
                f"but {len(lines)} TRX lines came",
                response=result.response,
                proc_return_code=result.proc_return_code,
                retryable=False,
            )
        transactions = tuple(self._history_line(oid, n, line, cur) for n, line in enumerate(lines))
        return OrderHistory(
            order_id=result.order_id or oid, currency=cur, transactions=transactions, result=result
        )

    # -- request and response -----------------------------------------------------------

    def _currency(self, currency: Currency | str | None) -> Currency:
        if currency is None:
            return self._config.default_currency
        if isinstance(currency, Currency):
            return currency
        return get_currency(currency)

    def _operate(self, operation: str, oid: str, fields: dict[str, str]) -> APIResult:
        """A money-moving operation: sent once, never retried, within one deadline."""
        end = time.monotonic() + self._config.api_deadline
        body = self._request_body(oid, {"Type": operation, **fields})
        root = self._exchange(operation, oid, body, safe=False, end=end)
        return self._check(operation, oid, root)

    def _query(self, operation: str, oid: str, within: float | None = None) -> APIResult:
        """A read-only query: retried on transport errors that may pass, within one deadline
        (``api_deadline``, or ``within`` when shorter)."""
        deadline = self._config.api_deadline
        if within is not None:
            # not a number (NaN) is no time at all: min() would give the whole deadline
            deadline = min(deadline, within) if within > 0 else 0.0
        end = time.monotonic() + deadline
        body = self._request_body(oid, {}, extra={operation: "QUERY"})
        attempts = 1 + self._retries
        for attempt in range(1, attempts + 1):
            try:
                root = self._exchange(operation, oid, body, safe=True, end=end, deadline=deadline)
            except APITransportError as exc:
                delay = self._backoff * 2 ** (attempt - 1)
                # Retries and their waits stay inside the call's deadline.
                if not exc.retryable or attempt == attempts or delay >= end - time.monotonic():
                    raise
                _log.debug(
                    "CMI %s of order %s: attempt %d of %d failed, retrying in %.2fs",
                    _WHAT[operation],
                    oid,
                    attempt,
                    attempts,
                    delay,
                )
                self._sleep(delay)
            else:
                return self._check(operation, oid, root)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _request_body(
        self, oid: str, fields: Mapping[str, str], extra: Mapping[str, str] | None = None
    ) -> bytes:
        config = self._config
        if not config.has_api_user:
            raise ConfigurationError(
                "api_username",
                "CMI's API user (api_username and api_password, an option CMI sells) is "
                "needed for capture, void, refund, status and history",
            )
        if not isinstance(oid, str) or not oid.strip():
            raise ValidationError("oid", "the order id, a non-empty string")
        if len(oid) > _MAX_OID:
            raise ValidationError("oid", f"at most {_MAX_OID} characters")
        elements = {
            "Name": config.api_username,
            "Password": config.api_password,
            "ClientId": config.client_id,
            **{k: v for k, v in fields.items() if k == "Type"},
            "OrderId": oid,
            **{k: v for k, v in fields.items() if k != "Type"},
        }
        parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<CC5Request>"]
        parts += [f"<{name}>{_escape(name, value)}</{name}>" for name, value in elements.items()]
        if extra:
            parts.append("<Extra>")
            parts += [f"<{name}>{_escape(name, value)}</{name}>" for name, value in extra.items()]
            parts.append("</Extra>")
        parts.append("</CC5Request>")
        return "".join(parts).encode("utf-8")

    def _exchange(
        self,
        operation: str,
        oid: str,
        body: bytes,
        *,
        safe: bool,
        end: float,
        deadline: float | None = None,
    ) -> Element:
        """POST once, return the ``<CC5Response>`` root or raise APITransportError.

        ``end`` is the call's deadline (``time.monotonic()``): connecting, sending and
        every read share it, see :meth:`_post_within`. ``deadline``: its length in seconds,
        as messages give it (default ``api_deadline``).
        """
        what = _WHAT[operation]
        unknown = (
            "" if safe else "; the outcome is unknown: check the order's status before trying again"
        )

        def fail(
            reason: str, *, http_status: int | None = None, retry: bool = safe
        ) -> APITransportError:
            _log.debug("CMI %s of order %s: no usable answer (%s)", what, oid, reason)
            return APITransportError(
                f"no usable answer from CMI to the {what} of order {oid}: {reason}{unknown}",
                http_status=http_status,
                retryable=retry,
            )

        if deadline is None:
            deadline = self._config.api_deadline
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise fail(f"the call's deadline of {deadline:g}s has passed")
        timeout = min(self._config.http_timeout, remaining)
        try:
            answer = self._post_within(body, timeout, remaining)
        except _DeadlineExceededError:
            raise fail(f"no complete answer within the call's deadline of {deadline:g}s") from None
        except _RefusedAnswerError as exc:
            raise fail(exc.reason, http_status=exc.http_status, retry=False) from None
        except requests.exceptions.ConnectTimeout as exc:
            _forget_request(exc)
            _log.debug("CMI %s of order %s: connect timeout, nothing sent", what, oid)
            raise APITransportError(
                f"could not connect to CMI for the {what} of order {oid} within "
                f"{timeout:g}s; nothing was sent",
                retryable=True,
            ) from exc
        except requests.exceptions.Timeout as exc:
            _forget_request(exc)
            raise fail(f"no answer within {timeout:g}s") from exc
        except requests.exceptions.RequestException as exc:
            _forget_request(exc)
            raise fail(f"{type(exc).__name__} (network error)") from exc

        status = answer.status
        if 300 <= status < 400:
            # Never followed: the password would go wherever the Location says.
            raise fail(f"HTTP {status}, a redirect (not followed)", http_status=status, retry=False)
        if not 200 <= status < 300:
            retry = safe and (status >= 500 or status == 429)
            raise fail(f"HTTP {status}", http_status=status, retry=retry)
        content_type = answer.content_type
        head = answer.content[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):  # by its body: labels can lie
            raise fail(f"an HTML page instead of XML ({content_type})", http_status=status)
        try:
            root = SafeET.fromstring(answer.content, forbid_dtd=True)
        except DefusedXmlException as exc:
            raise fail("the XML declares a DTD or entities, refused", http_status=status) from exc
        except (SafeET.ParseError, LookupError) as exc:  # LookupError: unknown encoding
            raise fail(f"not well-formed XML ({content_type})", http_status=status) from exc
        if root.tag != "CC5Response":
            raise fail(f"unexpected root element <{root.tag[:_MAX_TAG]}>", http_status=status)
        return root

    def _post_within(self, body: bytes, timeout: float, remaining: float) -> _Answer:
        """POST ``body`` and read the answer, all of it within ``remaining`` seconds.

        requests' ``timeout`` bounds each wait for the network, not their sum: a server
        sending one byte just inside every timeout keeps a plain call going for as long
        as it likes. So the exchange runs in a worker thread and this thread waits for
        it at most ``remaining`` seconds; past that, :class:`_DeadlineExceededError`. The
        worker is told to stop and, once the answer's headers have come, its socket is
        shut down, which ends the worker at once; a server still dripping its headers
        keeps only that worker (a daemon thread holding no lock of the caller's) until
        it stops or goes silent for ``timeout``. The worker reads the body in chunks,
        at most :data:`MAX_RESPONSE_BYTES`, and never follows a redirect.
        """
        box: dict[str, object] = {}
        cancelled = threading.Event()

        def work() -> None:
            try:
                box["answer"] = self._post(body, timeout, box, cancelled)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc

        context = contextvars.copy_context()  # the caller's context (logging, tracing)
        worker = threading.Thread(target=context.run, args=(work,), name="cmi-api", daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive():
            cancelled.set()
            _shut_down(box.get("response"))
            raise _DeadlineExceededError
        error = box.get("error")
        if isinstance(error, BaseException):
            raise error
        answer = box["answer"]
        assert isinstance(answer, _Answer)  # noqa: S101 - the worker returned or raised
        return answer

    def _post(
        self, body: bytes, timeout: float, box: dict[str, object], cancelled: threading.Event
    ) -> _Answer:
        """The worker's part of :meth:`_post_within`: one POST, the body read capped."""
        response = self._session.post(
            self._config.api_url,
            data=body,
            headers={"Content-Type": CONTENT_TYPE, "Accept-Encoding": "identity"},
            timeout=timeout,
            stream=True,
            allow_redirects=False,
        )
        box["response"] = response
        try:
            status = response.status_code
            content_type = response.headers.get("Content-Type", "no Content-Type")
            if cancelled.is_set() or not 200 <= status < 300:
                return _Answer(status, content_type, b"")
            too_large = f"an answer over {MAX_RESPONSE_BYTES} bytes, refused unread"
            declared = response.headers.get("Content-Length", "").strip()
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise _RefusedAnswerError(too_large, status)
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.raw.stream(_CHUNK, decode_content=False):
                    if cancelled.is_set():
                        return _Answer(status, content_type, b"")
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise _RefusedAnswerError(too_large, status)
                    chunks.append(chunk)
            except ReadTimeoutError as exc:  # requests wraps these for iter_content only
                raise requests.exceptions.ReadTimeout("the answer stopped coming") from exc
            except Urllib3Error as exc:
                raise requests.exceptions.ChunkedEncodingError("the answer broke off") from exc
            content = b"".join(chunks)
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            if encoding in ("gzip", "x-gzip", "deflate"):
                content = _inflate(content, status, too_large)
            elif encoding not in ("", "identity"):
                raise _RefusedAnswerError(
                    f"an answer in an unknown Content-Encoding {encoding[:20]!r}", status
                )
            return _Answer(status, content_type, content)
        finally:
            response.close()

    def _check(self, operation: str, oid: str, root: Element) -> APIResult:
        """Build the result; raise APIError (or OrderNotFoundError) unless it is approved.

        An approval must prove the operation asked for (:meth:`_prove`). For a capture,
        void or refund, a refusal (which tells the shop nothing was done) must be one: a
        ``Response`` that is not ``Approved`` and a ``ProcReturnCode`` that is not 00;
        anything else (no ``Response``, ``Declined`` with 00) is an APITransportError
        whose outcome is unknown.
        """
        result = self._result(operation, oid, root)
        what = _WHAT[operation]
        not_found = result.proc_return_code == "99" and bool(_NOT_FOUND.search(result.err_msg))
        if result.approved and (not not_found or operation in _MONEY_OPERATIONS):
            # a capture, void or refund "Approved" that also says "no record found" is no
            # refusal (which would free it to be sent again): _prove finds it unknown
            self._prove(operation, oid, result)
            _log.debug(
                "CMI %s of order %s: approved (ProcReturnCode %s)",
                what,
                oid,
                result.proc_return_code,
            )
            return result
        if operation in _MONEY_OPERATIONS and (
            not result.response or result.proc_return_code == "00"
        ):
            # a refusal says nothing was done (the shop may ask again): only a clear one is
            raise self._unreadable(
                operation, oid, "an answer that neither approves nor clearly refuses"
            )
        code = result.error_code or (
            f"ProcReturnCode {result.proc_return_code}" if result.proc_return_code else ""
        )
        reason = result.err_msg or result.response or "no reason given"
        suffix = f" ({code})" if code else ""
        if not_found:
            _log.debug("CMI %s of order %s: order not found", what, oid)
            error_class: type[APIError] = OrderNotFoundError
            message = f"CMI has no record of order {oid} ({what}): {reason}{suffix}"
        else:
            _log.debug("CMI %s of order %s: %s%s", what, oid, result.response or "refused", suffix)
            error_class = APIError
            message = f"CMI refused the {what} of order {oid}: {reason}{suffix}"
        raise error_class(
            message,
            response=result.response,
            proc_return_code=result.proc_return_code,
            err_msg=result.err_msg,
            error_code=result.error_code,
            retryable=False,
        )

    def _prove(self, operation: str, oid: str, result: APIResult) -> None:
        """An ``Approved`` answer must be about the order asked for (its ``OrderId``, when
        it names one) and, for a capture, void or refund, carry ``ProcReturnCode`` 00
        when it carries one (guide §5; docs/protocol.md#the-xml-api). One that contradicts
        itself or names another order proves nothing: an APITransportError (for a money
        operation, its outcome is unknown and it is settled from CMI's history, never
        taken as done nor sent again).
        """
        if result.order_id and result.order_id != oid.strip():
            raise self._unreadable(operation, oid, "an approval whose OrderId is another order's")
        if (
            operation in _MONEY_OPERATIONS
            and result.proc_return_code
            and result.proc_return_code != "00"
        ):
            raise self._unreadable(
                operation,
                oid,
                f"an approval with ProcReturnCode {result.proc_return_code!r}, not 00",
            )

    def _result(self, operation: str, oid: str, root: Element) -> APIResult:
        """Read the answer's fields; refuse over-long identifiers, cut over-long text.

        Every value is redacted (any of them may end up in an error message), stripped,
        then held to its length: fields in :data:`_DECIDING` / :data:`_EXTRA_DECIDING` and
        ``TRXn`` lines refuse the whole answer when longer (an APITransportError naming
        the field and the limit, never the value); any other text is cut to
        :data:`_MAX_TEXT` characters.
        """

        def held(name: str, raw: str | None, limit: int | None, cut: int = _MAX_TEXT) -> str:
            value = self._redact((raw or "").strip())
            if limit is None:
                return value[:cut]
            if len(value) > limit:
                raise self._unreadable(operation, oid, f"{name} is longer than {limit} characters")
            return value

        def text(tag: str) -> str:
            element = root.find(tag)
            return held(tag, element.text, _DECIDING.get(tag)) if element is not None else ""

        extra_element = root.find("Extra")
        extra: dict[str, str] = {}
        for child in extra_element if extra_element is not None else ():
            tag = child.tag
            if not isinstance(tag, str) or len(tag) > _MAX_TAG:
                raise self._unreadable(
                    operation, oid, f"an <Extra> element name is longer than {_MAX_TAG}"
                )
            limit = _MAX_TRX_LINE if re.fullmatch(r"TRX[0-9]+", tag) else _EXTRA_DECIDING.get(tag)
            extra[tag] = held(f"Extra/{tag}", child.text, limit, _EXTRA_TEXT.get(tag, _MAX_TEXT))
        response = text("Response")
        return APIResult(
            operation=operation,
            order_id=text("OrderId"),
            group_id=text("GroupId"),
            response=response,
            approved=response.lower() == "approved",
            auth_code=text("AuthCode"),
            host_ref_num=text("HostRefNum"),
            proc_return_code=text("ProcReturnCode"),
            trans_id=text("TransId"),
            err_msg=text("ErrMsg"),
            error_code=extra.get("ERRORCODE", "") or text("ERRORCODE"),
            settle_id=extra.get("SETTLEID", ""),
            trx_date=_parse_date(extra.get("TRXDATE", "")),
            extra=extra,
        )

    def _unreadable(self, operation: str, oid: str, reason: str) -> APITransportError:
        """CMI answered, but with values this library will not store (see :meth:`_result`)."""
        what = _WHAT[operation]
        unknown = (
            "; the outcome is unknown: check the order's status before trying again"
            if operation in _MONEY_OPERATIONS
            else ""
        )
        _log.debug("CMI %s of order %s: answer refused (%s)", what, oid, reason)
        return APITransportError(
            f"CMI's answer to the {what} of order {oid} is refused: {reason}{unknown}",
            retryable=False,
        )

    def _redact(self, text: str) -> str:
        """Remove the API password should CMI ever echo it in a free-text field."""
        password = self._config.api_password
        return text.replace(password, "***") if password else text

    def _minor(self, extra: Mapping[str, str], name: str, currency: Currency) -> Decimal | None:
        return _minor_amount(extra.get(name, ""), currency, name)

    def _history_line(
        self, oid: str, index: int, line: str, currency: Currency
    ) -> HistoryTransaction:
        cells = line.split("\t")
        cells += [""] * (11 - len(cells))
        cells = [cell.strip() for cell in cells]
        for position, (name, limit) in _TRX_CELLS.items():
            if len(cells[position]) > limit:
                raise APITransportError(
                    f"CMI's history of order {oid} is refused: TRX{index + 1} {name} is "
                    f"longer than {limit} characters",
                    retryable=False,
                )
        try:
            amount = _minor_amount(cells[2], currency, f"TRX{index + 1} amount")
            captured = _minor_amount(cells[3], currency, f"TRX{index + 1} capture amount")
        except APITransportError as exc:
            raise APITransportError(
                f"CMI's history of order {oid} is unreadable: {exc}", retryable=False
            ) from exc
        return HistoryTransaction(
            charge_type=cells[0],
            trans_stat=cells[1],
            state=order_state(cells[1], cells[0], captured),
            amount=amount,
            captured_amount=captured,
            auth_time=_parse_date(cells[4]),
            capture_time=_parse_date(cells[5]),
            void_time=_parse_date(cells[6]),
            host_ref_num=cells[7],
            auth_code=cells[8],
            proc_return_code=cells[9],
            trans_id=cells[10],
            raw=line,
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back from one POST: status, declared type, body (capped)."""

    status: int
    content_type: str
    content: bytes


class _DeadlineExceededError(Exception):
    """The call's overall deadline passed before the answer was complete."""


class _RefusedAnswerError(Exception):
    """An answer refused on sight (too large, unknown encoding); ``reason`` says why."""

    def __init__(self, reason: str, http_status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


def _shut_down(response: object) -> None:
    """Shut the socket under a streamed response, so that a worker blocked on it returns.

    Best effort: before the answer's headers there is no response yet, and a test double
    may have no socket at all.
    """
    raw = getattr(response, "raw", None)
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed: nothing left to stop
            sock.shutdown(socket.SHUT_RDWR)


def _inflate(content: bytes, status: int, too_large: str) -> bytes:
    """Decompress a gzip or zlib answer (the server ignored ``identity``), capped too."""
    try:
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib, by the header
        data = inflater.decompress(content, MAX_RESPONSE_BYTES + 1)
    except zlib.error:
        raise _RefusedAnswerError("an answer whose compression is unreadable", status) from None
    if len(data) > MAX_RESPONSE_BYTES:  # stopped at the cap: a "zip bomb" is never expanded
        raise _RefusedAnswerError(too_large, status)
    return data


def _escape(name: str, value: str) -> str:
    """XML-escape one element's text; refuse characters XML cannot carry."""
    if _XML_ILLEGAL.search(value):
        # The value is not repeated: for Password it would be a secret.
        raise ValidationError(name, "contains control characters XML cannot carry")
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def _minor_amount(text: str, currency: Currency, name: str) -> Decimal | None:
    """``"101"`` -> ``Decimal("1.01")`` (minor units, docs/protocol.md#the-xml-api); ``""``
    -> None."""
    text = text.strip()
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise APITransportError(f"unreadable amount in {name}: {text[:20]!r}", retryable=False)
    return from_minor_units(text, currency)


def _parse_date(text: str) -> datetime | None:
    """Parse CMI's dates (several formats); ``None`` when empty or unrecognised."""
    text = text.strip()
    if re.fullmatch(r"\d\d/\d\d/0\d{4} .*", text):  # §4.2.3: "jj/mm/0aaaa hh24:mi:ss"
        text = text[:6] + text[7:]
    for fmt in _DATE_FORMATS:
        try:
            # CMI sends its local time (Morocco) without an offset; it is returned naive
            # rather than guessed.
            return datetime.strptime(text, fmt)  # noqa: DTZ007
        except ValueError:
            continue
    return None


def _forget_request(exc: requests.exceptions.RequestException) -> None:
    """Drop the prepared request (its body holds the API password) from a chained error."""
    exc.request = None
