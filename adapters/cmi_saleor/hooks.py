"""What Saleor hears of a payment: :class:`SaleorHook` -> ``transactionEventReport``.

:mod:`cmi_django` calls the hook inside the callback's transaction, after the payment row
is saved. The hook reports to Saleor and raises :class:`SaleorReportError` unless Saleor
recorded the event (``alreadyProcessed`` and ``ALREADY_EXISTS`` count as recorded): the
callback then rolls back and CMI is answered ``FAILURE``, so CMI never captures a payment
Saleor does not know about.

What is reported:

- an approval in auto mode: ``CHARGE_SUCCESS`` (from :meth:`captured`; :meth:`authorised`
  sees the row already captured and leaves it to it); in manual mode, or when the okUrl
  arrived before the callback: ``AUTHORIZATION_SUCCESS``;
- a declined attempt: ``CHARGE_FAILURE`` / ``AUTHORIZATION_FAILURE`` (the shopper may try
  again on CMI's page, with a new ``TransId``);
- staff operations outside Saleor (Django admin, ``cmi_reconcile``): ``CHARGE_SUCCESS``,
  ``REFUND_SUCCESS``, ``CANCEL_SUCCESS``. Operations Saleor asked for itself are answered
  in the webhook's response instead: :func:`silenced` turns reporting off around them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cmi_django.display import format_money
from cmi_django.hooks import PaymentHook, RetryableHookError
from django.urls import NoReverseMatch, reverse

from cmi_core import PaymentState, format_amount, get_currency, merchant_message
from cmi_saleor import conf
from cmi_saleor.graphql import TRANSACTION_EVENT_REPORT, SaleorAPIError, execute
from cmi_saleor.models import TransactionMap

if TYPE_CHECKING:
    from cmi_django.models import Payment

    from cmi_core import CallbackResult

__all__ = ["SaleorHook", "SaleorReportError", "money", "report", "silenced"]

logger = logging.getLogger("cmi_saleor")

_SILENCED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "cmi_saleor_silenced", default=False
)
#: The approval's callback, kept by ``authorised`` for ``captured`` (same transaction).
_LAST_RESULT: contextvars.ContextVar[CallbackResult | None] = contextvars.ContextVar(
    "cmi_saleor_last_result", default=None
)
_PAN = re.compile(r"^\s*([0-9]{4})[0-9]*[^0-9]+[^0-9]*?([0-9]{4})\s*$")


class SaleorReportError(RetryableHookError):
    """Saleor did not record the reported event (retryable: the payment is not flagged)."""


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No reports inside: the caller answers Saleor itself (sync webhook responses)."""
    token = _SILENCED.set(True)
    try:
        yield
    finally:
        _SILENCED.reset(token)


def money(amount: Decimal, payment: Payment) -> str:
    """``amount`` as text with the payment currency's decimals (``"120.50"``)."""
    return format_amount(amount, get_currency(payment.currency))


def card_details(payment: Payment, result: CallbackResult | None = None) -> dict[str, Any] | None:
    """``PaymentMethodDetailsInput.card`` from the masked PAN, brand and expiry, if known."""
    masked = payment.masked_pan or (result.masked_pan if result else "")
    brand = payment.card_brand or (result.card_brand if result else "")
    if not masked and not brand:
        return None
    card: dict[str, Any] = {"name": f"{brand or 'Card'} (CMI)"[:256]}
    if brand:
        card["brand"] = brand.lower()[:40]
    match = _PAN.match(masked)
    if match:
        card["firstDigits"], card["lastDigits"] = match.group(1), match.group(2)
    if result is not None:
        month = result.fields.get("Ecom_Payment_Card_ExpDate_Month", "").strip()
        year = result.fields.get("Ecom_Payment_Card_ExpDate_Year", "").strip()
        if month.isdigit() and 1 <= int(month) <= 12:
            card["expMonth"] = int(month)
        if year.isdigit() and len(year) in (2, 4):
            card["expYear"] = int(year) + (2000 if len(year) == 2 else 0)
    return {"card": card}


def external_url(payment: Payment) -> str | None:
    """The payment's page in this app's Django admin, when the admin is installed."""
    try:
        return conf.app_url() + reverse("admin:cmi_django_payment_change", args=[payment.pk])
    except NoReverseMatch:
        return None


def report(
    mapping: TransactionMap,
    event_type: str,
    *,
    amount: Decimal,
    psp_reference: str,
    message: str = "",
    actions: list[str] | None = None,
    details: dict[str, Any] | None = None,
    url: str | None = None,
) -> bool:
    """Send ``transactionEventReport``; True if Saleor recorded it (now or before).

    Raises :class:`SaleorReportError` when it did not (unknown installation, transport,
    GraphQL errors other than ``ALREADY_EXISTS``).
    """
    installation = mapping.installation
    if installation is None:
        raise SaleorReportError(f"no Saleor installation for {mapping.saleor_api_url}")
    variables: dict[str, Any] = {
        "id": mapping.transaction_id,
        "type": event_type,
        "amount": money(amount, mapping.payment),
        "pspReference": psp_reference,
        "message": message[:512],
        "availableActions": actions or [],
    }
    if url:
        variables["externalUrl"] = url
    if details:
        variables["paymentMethodDetails"] = details
    try:
        data = execute(
            installation.saleor_api_url, installation.token, TRANSACTION_EVENT_REPORT, variables
        )
    except SaleorAPIError as exc:
        raise SaleorReportError(str(exc)) from exc
    answer = data.get("transactionEventReport") or {}
    if answer.get("alreadyProcessed"):
        return True
    errors = answer.get("errors") or []
    if errors and all(e.get("code") == "ALREADY_EXISTS" for e in errors):
        return True
    if errors:
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)[:500]
        raise SaleorReportError(f"Saleor refused {event_type} for {mapping.oid}: {text}")
    if not answer.get("transactionEvent"):
        raise SaleorReportError(f"Saleor did not confirm {event_type} for {mapping.oid}")
    return True


def _mapping(payment: Payment) -> TransactionMap:
    try:
        return TransactionMap.objects.select_related("installation").get(payment=payment)
    except TransactionMap.DoesNotExist:
        raise SaleorReportError(f"payment {payment.oid} has no Saleor transaction") from None


def psp_reference(payment: Payment) -> str:
    return payment.trans_id or payment.oid


def actions_for(payment: Payment) -> list[str]:
    """What Saleor may still ask of this payment."""
    state = PaymentState(payment.state)
    if state is PaymentState.AUTHORISED:
        return ["CHARGE", "CANCEL"]
    if state in (PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED):
        actions = ["REFUND"]
        if state is PaymentState.CAPTURED:
            actions.append("CANCEL")  # CMI voids a capture on its own day
        return actions
    return []


def _operation_reference(payment: Payment, kind: str, fallback: str) -> str:
    operation = payment.operations.filter(kind=kind, succeeded=True).first()
    trans_id = ""
    if operation is not None and isinstance(operation.response, dict):
        trans_id = str(operation.response.get("trans_id") or "")
    return trans_id or fallback


class SaleorHook(PaymentHook):
    """Reports each change to the Saleor transaction the payment was made for."""

    def authorised(self, payment: Payment, result: CallbackResult) -> None:
        if _SILENCED.get():
            return
        if payment.captured_amount > 0:  # auto capture: reported once, as CHARGE_SUCCESS
            _LAST_RESULT.set(result)
            return
        report(
            _mapping(payment),
            "AUTHORIZATION_SUCCESS",
            amount=payment.authorised_amount,
            psp_reference=result.trans_id or psp_reference(payment),
            message=f"CMI authorised, auth code {result.auth_code}".strip(", "),
            actions=actions_for(payment),
            details=card_details(payment, result),
            url=external_url(payment),
        )

    def captured(self, payment: Payment, amount: Decimal) -> None:
        if _SILENCED.get():
            return
        result = _LAST_RESULT.get()
        _LAST_RESULT.set(None)
        if result is not None and result.oid != payment.oid:
            result = None
        report(
            _mapping(payment),
            "CHARGE_SUCCESS",
            amount=amount,
            psp_reference=psp_reference(payment),
            message=f"CMI captured {format_money(amount, payment.currency, 'en')}, "
            f"auth code {payment.auth_code}",
            actions=actions_for(payment),
            details=card_details(payment, result),
            url=external_url(payment),
        )

    def declined(self, payment: Payment, result: CallbackResult) -> None:
        if _SILENCED.get():
            return
        kind = "AUTHORIZATION_FAILURE" if payment.capture_mode == "manual" else "CHARGE_FAILURE"
        report(
            _mapping(payment),
            kind,
            amount=payment.amount,
            psp_reference=result.trans_id or f"{payment.oid}-{payment.declined_attempts}",
            message=merchant_message(result.proc_return_code or None, result.err_code or None),
            details=card_details(payment, result),
            url=external_url(payment),
        )

    def refunded(self, payment: Payment, amount: Decimal) -> None:
        if _SILENCED.get():
            return
        fallback = f"{psp_reference(payment)}-refund-{payment.refunded_amount}"
        report(
            _mapping(payment),
            "REFUND_SUCCESS",
            amount=amount,
            psp_reference=_operation_reference(payment, "refund", fallback),
            message=f"CMI refunded {format_money(amount, payment.currency, 'en')}",
            actions=actions_for(payment),
            url=external_url(payment),
        )

    def voided(self, payment: Payment) -> None:
        if _SILENCED.get():
            return
        report(
            _mapping(payment),
            "CANCEL_SUCCESS",
            amount=payment.authorised_amount or payment.amount,
            psp_reference=psp_reference(payment),
            message="CMI voided the payment",
            url=external_url(payment),
        )

    def needs_attention(self, payment: Payment, reason: str) -> None:
        """Best effort: an INFO event; a failure here must not undo the flag."""
        if _SILENCED.get():
            return
        try:
            report(
                _mapping(payment),
                "INFO",
                amount=payment.amount,
                psp_reference=psp_reference(payment),
                message=f"CMI payment needs attention: {reason}",
                url=external_url(payment),
            )
        except SaleorReportError:
            logger.warning("could not tell Saleor that %s needs attention", payment.oid)
