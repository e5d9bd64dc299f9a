"""The CC5 XML API at ``/fim/api``: PostAuth, Void, Credit, status, history.

The API is described in ``docs/protocol.md#the-xml-api``.

Requests come as a raw XML body or form-encoded as ``DATA=<xml>``; they are parsed with
``defusedxml`` (no entities, no external DTDs). The API user (``Name``, ``Password``) of
the ``ClientId`` is checked first. Every refusal is a ``<CC5Response>`` with
``Response=Error``, ``ProcReturnCode`` 99, ``ErrMsg`` and ``Extra/ERRORCODE``, as CMI
sends it; malformed input gets the same shape, never an HTTP error.

ORDERSTATUS reports the order's current transaction (``TRANS_STAT`` A pre-authorised, C
captured, V voided, D declined, ERR error; ``CHARGE_TYPE_CD`` C once refunded);
ORDERHISTORY lists every transaction as tab-separated ``TRXn`` lines (type, status,
amount, capture amount, auth time, capture time, void time, host ref, auth code, proc
code, trans id). Amounts there are in minor units (``101`` = 1.01).
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from cmi_core.errors import ValidationError
from cmi_core.money import Currency, check_amount, get_currency, parse_amount, to_minor_units
from cmi_core.sandbox.clock import Clock, local
from cmi_core.sandbox.ledger import BAD_AMOUNT, Done, Ledger, Refusal
from cmi_core.sandbox.merchants import Merchant
from cmi_core.sandbox.results import api_trx_date, new_ids
from cmi_core.sandbox.storage import OrderRow, Store, TransactionRow

__all__ = ["XmlApi"]

AUTH_FAILED = "CORE-2001"
BAD_REQUEST = "CORE-2515"
_MAX_XML = 64 * 1024


def _dttm(moment: datetime | None) -> str:
    """ORDERSTATUS/ORDERHISTORY times: ``2023-09-10 22:36:30.155`` (Moroccan time)."""
    if moment is None:
        return ""
    return f"{local(moment):%Y-%m-%d %H:%M:%S.%f}"[:-3]


def _minor(amount: Decimal, currency: Currency) -> str:
    return str(to_minor_units(amount, currency))


def _document(
    children: list[tuple[str, str]], extra: list[tuple[str, str]], head: str = ""
) -> bytes:
    root = ET.Element("CC5Response")
    for name, value in children:
        ET.SubElement(root, name).text = value
    extra_element = ET.SubElement(root, "Extra")
    for name, value in extra:
        ET.SubElement(extra_element, name).text = value
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


class XmlApi:
    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        clock: Clock,
        merchants: Callable[[], Mapping[str, Merchant]],
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.clock = clock
        self.merchants = merchants

    # Entry point --------------------------------------------------------------------

    def handle(self, body: bytes, content_type: str) -> bytes:
        """Answer one request body with a ``<CC5Response>`` document (never raises)."""
        xml = self._extract(body, content_type)
        if xml is None:
            return self.error("", "Invalid request: no XML document", BAD_REQUEST)
        try:
            root = fromstring(xml)
        # LookupError: an XML declaration naming an unknown encoding ("bogus-xx").
        except (ET.ParseError, DefusedXmlException, ValueError, LookupError):
            return self.error("", "Invalid XML request", BAD_REQUEST)
        if root.tag != "CC5Request":
            return self.error("", "Invalid XML request: CC5Request expected", BAD_REQUEST)

        def text(path: str) -> str:
            element = root.find(path)
            return (element.text or "").strip() if element is not None else ""

        oid = text("OrderId")
        merchant = self.merchants().get(text("ClientId"))
        if (
            merchant is None
            or not merchant.api_username
            or not self._credentials_ok(merchant, text("Name"), text("Password"))
        ):
            return self.error(
                oid, "Insufficient permissions to perform requested operation.", AUTH_FAILED
            )
        kind = text("Type").lower()
        status_query = text("Extra/ORDERSTATUS").upper() == "QUERY"
        history_query = text("Extra/ORDERHISTORY").upper() == "QUERY"
        if not oid:
            return self.error("", "Invalid request: OrderId is required", BAD_REQUEST)
        try:
            if kind == "postauth":
                amount = self._amount(text("Total"), text("Currency"), merchant, oid)
                return self._done(self.ledger.capture(merchant.client_id, oid, amount))
            if kind == "void":
                return self._done(self.ledger.void(merchant.client_id, oid))
            if kind == "credit":
                amount = self._amount(text("Total"), text("Currency"), merchant, oid)
                return self._done(self.ledger.credit(merchant.client_id, oid, amount))
            if not kind and status_query:
                return self._status(merchant, oid)
            if not kind and history_query:
                return self._history(merchant, oid)
        except Refusal as refusal:
            return self.error(oid, refusal.message, refusal.err_code)
        return self.error(oid, "Unsupported transaction type", BAD_REQUEST)

    @staticmethod
    def _extract(body: bytes, content_type: str) -> bytes | None:
        if len(body) > _MAX_XML:
            return None
        stripped = body.strip()
        if stripped.startswith(b"<"):
            return stripped
        if "x-www-form-urlencoded" in content_type or stripped.upper().startswith(b"DATA="):
            try:
                form = parse_qs(stripped.decode("utf-8"), keep_blank_values=True)
            except (UnicodeDecodeError, ValueError):
                return None
            for name, values in form.items():
                if name.upper() == "DATA" and values:
                    return values[0].strip().encode("utf-8")
        return None

    @staticmethod
    def _credentials_ok(merchant: Merchant, name: str, password: str) -> bool:
        name_ok = hmac.compare_digest(name.encode(), merchant.api_username.encode())
        password_ok = hmac.compare_digest(password.encode(), merchant.api_password.encode())
        return name_ok and password_ok

    def _amount(self, total: str, currency: str, merchant: Merchant, oid: str) -> Decimal | None:
        order = self.store.get_order(merchant.client_id, oid)
        if order is None:
            raise Refusal("", f"No record found for {oid}")
        order_currency = get_currency(order.currency)
        if currency:
            try:
                given = get_currency(currency)
            except ValidationError as exc:
                raise Refusal(BAD_AMOUNT, "Invalid currency") from exc
            if given != order_currency:
                raise Refusal(BAD_AMOUNT, "Currency does not match the order's currency")
        if not total:
            return None
        try:
            amount = parse_amount(total, "Total")
            check_amount(amount, order_currency, "Total")
        except ValidationError as exc:
            raise Refusal(BAD_AMOUNT, "Invalid amount") from exc
        return amount

    # Answers ------------------------------------------------------------------------

    def error(self, oid: str, message: str, err_code: str) -> bytes:
        now = self.clock.now()
        return _document(
            [
                ("OrderId", oid),
                ("GroupId", oid),
                ("Response", "Error"),
                ("AuthCode", ""),
                ("HostRefNum", ""),
                ("ProcReturnCode", "99"),
                ("TransId", new_ids(now).trans_id),
                ("ErrMsg", message),
            ],
            [("TRXDATE", api_trx_date(now)), ("ERRORCODE", err_code), ("NUMCODE", "99")],
        )

    def _done(self, done: Done) -> bytes:
        transaction, order = done.transaction, done.order
        return _document(
            [
                ("OrderId", order.oid),
                ("GroupId", order.oid),
                ("Response", "Approved"),
                ("AuthCode", transaction.auth_code),
                ("HostRefNum", transaction.host_ref_num),
                ("ProcReturnCode", "00"),
                ("TransId", transaction.trans_id),
                ("ErrMsg", ""),
            ],
            [
                ("SETTLEID", ""),
                ("TRXDATE", api_trx_date(transaction.created_at)),
                ("ERRORCODE", ""),
                ("CARDBRAND", order.brand),
                ("CARDISSUER", order.issuer),
                ("NUMCODE", "00"),
            ],
        )

    def _order(self, merchant: Merchant, oid: str) -> OrderRow:
        order = self.store.get_order(merchant.client_id, oid)
        if order is None:
            raise Refusal("", f"No record found for {oid}")
        return order

    @staticmethod
    def _trans_stat(transaction: TransactionRow) -> str:
        if transaction.voided_at is not None:
            return "V"
        if transaction.response == "Declined":
            return "D"
        if transaction.response != "Approved":
            return "ERR"
        return "A" if transaction.type == "PreAuth" else "C"

    def _status(self, merchant: Merchant, oid: str) -> bytes:
        order = self._order(merchant, oid)
        currency = get_currency(order.currency)
        transactions = [t for t in self.store.transactions(order.id) if t.type != "Void"]
        if not transactions:
            raise Refusal("", f"No record found for {oid}")
        last = transactions[-1]
        preauth = next(
            (t for t in transactions if t.type == "PreAuth" and t.response == "Approved"), last
        )
        capture = next((t for t in reversed(transactions) if t.type == "PostAuth"), None)
        stat = {"PRE": "A", "POST": "C", "RFND": "C", "VOID": "V"}.get(
            order.state, self._trans_stat(last)
        )
        void_time = next((t.voided_at for t in transactions if t.voided_at is not None), None)
        extra = [
            ("AUTH_CODE", preauth.auth_code),
            ("AUTH_DTTM", _dttm(preauth.created_at)),
            ("CAPTURE_AMT", _minor(order.captured, currency)),
            ("CAPTURE_DTTM", _dttm(capture.created_at if capture else None)),
            ("CHARGE_TYPE_CD", "C" if order.state == "RFND" else "S"),
            ("HOST_REF_NUM", last.host_ref_num),
            ("MDSTATUS", order.md_status),
            ("ORD_ID", order.oid),
            ("ORIG_TRANS_AMT", _minor(order.authorized or order.amount, currency)),
            ("PAN", order.masked_pan),
            ("PROC_RET_CD", last.proc_return_code),
            ("TRANS_ID", last.trans_id),
            ("TRANS_STAT", stat),
            ("VOID_DTTM", _dttm(void_time)),
        ]
        return _document(
            [
                ("OrderId", order.oid),
                ("GroupId", order.oid),
                ("Response", "Approved"),
                ("AuthCode", preauth.auth_code),
                ("HostRefNum", last.host_ref_num),
                ("ProcReturnCode", "00"),
                ("TransId", last.trans_id),
                ("ErrMsg", f"Record(s) found for {order.oid}"),
            ],
            extra,
        )

    def _history(self, merchant: Merchant, oid: str) -> bytes:
        order = self._order(merchant, oid)
        currency = get_currency(order.currency)
        lines: list[str] = []
        for transaction in self.store.transactions(order.id):
            if transaction.type == "Void":
                continue  # a void shows as the V status and void time of what it cancelled
            captured = transaction.amount if transaction.type != "PreAuth" else Decimal(0)
            cells = [
                "C" if transaction.type == "Credit" else "S",
                self._trans_stat(transaction),
                _minor(transaction.amount, currency),
                _minor(captured, currency),
                _dttm(transaction.created_at),
                _dttm(transaction.created_at) if transaction.type == "PostAuth" else "",
                _dttm(transaction.voided_at),
                transaction.host_ref_num,
                transaction.auth_code,
                transaction.proc_return_code,
                transaction.trans_id,
            ]
            lines.append("\t".join(cells))
        if not lines:
            raise Refusal("", f"No record found for {oid}")
        extra = [("TRXCOUNT", str(len(lines)))]
        extra += [(f"TRX{number}", line) for number, line in enumerate(lines, start=1)]
        return _document(
            [
                ("OrderId", order.oid),
                ("GroupId", order.oid),
                ("Response", "Approved"),
                ("AuthCode", ""),
                ("HostRefNum", ""),
                ("ProcReturnCode", "00"),
                ("TransId", ""),
                ("ErrMsg", f"Record(s) found for {order.oid}"),
            ],
            extra,
        )
