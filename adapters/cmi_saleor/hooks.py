"""What Saleor hears of a payment: :class:`SaleorHook` -> ``transactionEventReport``.

:mod:`cmi_django` calls the hook inside the change's transaction (the callback's, a
return's, a staff operation's), with the payment row saved and locked. The hook sends
nothing from there: no network call is made under a lock or an open write transaction
(on SQLite every other writer would wait for Saleor's answer). It writes the report it
owes Saleor (:class:`~cmi_saleor.models.EventReport`, :func:`report`) in that same
transaction, so the change and the news of it commit together or not at all; once the
transaction commits, :func:`deliver` sends it, still inside the request (for a callback:
before CMI gets its reply, so Saleor learns at once). A report Saleor does not record then
(Saleor down, an error, a crash before the send) stays owed and goes out later, in order,
exactly once: with the next change of the same transaction, when Saleor next calls
``transactionProcess`` for it, or from ``manage.py cmi_saleor_reports`` (cron). Saleor
deduplicates events of the same type and ``pspReference`` (``alreadyProcessed``,
``ALREADY_EXISTS``), so a report sent again after a crash between the send and its
bookkeeping is recorded once.

What is reported:

- an approval in auto mode: ``CHARGE_SUCCESS`` (one change with the ``authorised`` and
  ``captured`` effects, reported once, by :meth:`~SaleorHook.on_captured`); in manual
  mode, or when the okUrl arrived before the callback: ``AUTHORIZATION_SUCCESS``;
- a declined attempt: ``INFO`` with the reason while CMI's page stays open for another
  card (a new ``TransId``); ``CHARGE_FAILURE`` / ``AUTHORIZATION_FAILURE`` only when the
  attempt is final: the shopper came back through the failUrl (:func:`report_final_failure`,
  from the return view), or CMI's session expired (:func:`decline_is_final`, for the
  process-session answer). Saleor's ``transactionProcess`` returns the first final event
  it stored without asking the app again, so a failure reported for a decline the shopper
  then retried would stand against the payment that follows;
- staff operations outside Saleor (Django admin, ``cmi_reconcile``): ``CHARGE_SUCCESS``,
  ``REFUND_SUCCESS``, ``CANCEL_SUCCESS`` (a same-day void of a capture is reported as
  ``REFUND_SUCCESS`` of the captured amount: nothing is collected). Changes Saleor asked
  for itself (its charge, refund and cancel requests, its process-session call) come
  with ``source="platform"`` and are not reported: the webhook's response tells Saleor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from cmi_django.display import format_money
from cmi_django.hooks import PaymentChange, PaymentHook, RetryableHookError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.urls import NoReverseMatch, get_resolver, get_urlconf, reverse
from django.utils import timezone

from cmi_core import PaymentState, format_amount, get_currency, merchant_message
from cmi_core.effects import Action, EffectKind, allowed_actions
from cmi_saleor import conf
from cmi_saleor.graphql import TRANSACTION_EVENT_REPORT, SaleorAPIError, execute
from cmi_saleor.models import EventReport, SaleorInstallation, TransactionMap

if TYPE_CHECKING:
    from cmi_django.models import Payment

    from cmi_core import CallbackResult
    from cmi_core.effects import Effect

__all__ = [
    "SaleorHook",
    "SaleorReportError",
    "decline_is_final",
    "deliver",
    "deliver_owed",
    "money",
    "report",
    "report_final_failure",
    "send",
]

logger = logging.getLogger("cmi_saleor")

_PAN = re.compile(r"^\s*([0-9]{4})[0-9]*[^0-9]+[^0-9]*?([0-9]{4})\s*$")


class SaleorReportError(RetryableHookError):
    """Saleor did not record a report (raised by :func:`send`), or a payment has no Saleor
    transaction to report to (retryable: the payment is not flagged)."""


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
    path = _admin_path(get_resolver(get_urlconf()))
    return conf.app_url() + path.replace(_PK, str(payment.pk)) if path else None


_PK = "0123456789"  # a stand-in for the pk: the admin's path takes any text there


@lru_cache(maxsize=8)
def _admin_path(resolver: object) -> str | None:
    """The admin's payment page path, with :data:`_PK` for the pk: ``reverse`` costs more
    than the rest of the report together, and the path only changes with the URLconf
    (``resolver``: Django's own cached one for it, which a URLconf change replaces)."""
    try:
        return reverse("admin:cmi_django_payment_change", args=[_PK])
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
) -> EventReport:
    """Owe Saleor a ``transactionEventReport``; it is sent once the transaction commits.

    The report is an :class:`~cmi_saleor.models.EventReport` row written in the caller's
    transaction (committed with the change it reports, or rolled back with it), claimed by
    this process; after the commit (at once when no transaction is open) :func:`deliver`
    sends what the Saleor transaction is owed. Never calls Saleor itself, never raises for
    Saleor's sake: a report Saleor does not record stays owed.
    """
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
    owed = EventReport.objects.create(
        mapping=mapping,
        event_type=event_type,
        variables=variables,
        claimed_until=timezone.now() + _lease(),  # ours: sent by deliver() after the commit
    )
    # Nothing older owed (the hook's own lookup says so): deliver() need not look.
    ready = None if getattr(mapping, "owed_before", True) else [owed]
    transaction.on_commit(
        partial(deliver, mapping.pk, claimed=(owed.pk,), ready=ready), robust=True
    )
    return owed


def _lease() -> timedelta:
    """How long a sender holds a report: two tries at Saleor's timeout, and a margin."""
    return timedelta(seconds=2 * conf.http_timeout() + 10)


def send(installation: SaleorInstallation, variables: dict[str, Any]) -> None:
    """Send one ``transactionEventReport`` now; return when Saleor recorded it (now or
    before: ``alreadyProcessed``, ``ALREADY_EXISTS``).

    Raises :class:`SaleorReportError` when it did not (transport, HTTP status, GraphQL
    errors other than ``ALREADY_EXISTS``). Call it with no transaction open.
    """
    event_type = variables.get("type")
    try:
        data = execute(
            installation.saleor_api_url, installation.token, TRANSACTION_EVENT_REPORT, variables
        )
    except SaleorAPIError as exc:
        raise SaleorReportError(str(exc)) from exc
    answer = data.get("transactionEventReport") or {}
    if not isinstance(answer, dict):
        raise SaleorReportError(f"Saleor did not confirm {event_type}")
    if answer.get("alreadyProcessed"):
        return
    errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
    if errors and all(e.get("code") == "ALREADY_EXISTS" for e in errors):
        return
    if errors:
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)[:400]
        raise SaleorReportError(f"Saleor refused {event_type}: {text}")
    if answer.get("errors") or not answer.get("transactionEvent"):
        raise SaleorReportError(f"Saleor did not confirm {event_type}")


def deliver(
    mapping_pk: int, *, claimed: Collection[int] = (), ready: list[EventReport] | None = None
) -> int:
    """Send what Saleor is owed for one transaction, oldest first; how many were sent.

    ``claimed``: reports this process already holds (just written by :func:`report`);
    any other is claimed first, by a conditional UPDATE, so two senders never send the
    same report at once. Stops at the first report another sender holds or Saleor does
    not record: what follows waits (Saleor's amounts depend on the order of its events),
    and reports of ``claimed`` not sent are released for the next sender. Never raises
    (it runs after a commit, while CMI or Saleor waits for an answer): what is not sent
    stays owed and the reason is logged and kept on the row. ``ready``: the reports owed,
    with their mapping and installation loaded, when the caller knows them all (no query).
    """
    sent = 0
    try:
        owed = ready
        if owed is None:
            owed = list(
                EventReport.objects.filter(mapping_id=mapping_pk, sent_at=None)
                .select_related("mapping__installation")
                .defer("mapping__installation__jwks")
                .order_by("id")
            )
        for index, item in enumerate(owed):
            if item.pk not in claimed and not _claim(item.pk):
                break  # another sender is on it (and on what follows)
            error = _send(item)
            if error:
                logger.warning(
                    "Saleor did not record %s for %s (owed, sent later): %s",
                    item.event_type,
                    item.mapping.oid,
                    error,
                )
                EventReport.objects.filter(pk=item.pk).update(
                    claimed_until=None, attempts=F("attempts") + 1, last_error=error[:500]
                )
                _release([i.pk for i in owed[index + 1 :] if i.pk in claimed])
                return sent
            EventReport.objects.filter(pk=item.pk).update(
                sent_at=timezone.now(),
                claimed_until=None,
                attempts=F("attempts") + 1,
                last_error="",
            )
            sent += 1
        else:
            return sent
        _release([i.pk for i in owed[index:] if i.pk in claimed])
    except Exception:
        logger.exception("could not send what Saleor is owed for transaction map %s", mapping_pk)
    return sent


def _claim(pk: int) -> bool:
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    claimed = EventReport.objects.filter(free, pk=pk, sent_at__isnull=True)
    return claimed.update(claimed_until=now + _lease()) == 1


def _release(pks: list[int]) -> None:
    if pks:
        EventReport.objects.filter(pk__in=pks, sent_at__isnull=True).update(claimed_until=None)


def _send(item: EventReport) -> str:
    """Send one owed report; the reason it was not recorded, or ``""``."""
    mapping = item.mapping
    installation = mapping.installation or (
        SaleorInstallation.objects.filter(saleor_api_url=mapping.saleor_api_url).first()
    )
    if installation is None:
        return f"no Saleor installation for {mapping.saleor_api_url}"
    try:
        send(installation, item.variables)
    except SaleorReportError as exc:
        return str(exc)
    return ""


def deliver_owed(mapping: TransactionMap) -> int:
    """:func:`deliver` for ``mapping``, when anything is owed (one indexed query if not)."""
    if not EventReport.objects.filter(mapping=mapping, sent_at__isnull=True).exists():
        return 0
    return deliver(mapping.pk)


def deliver_all() -> tuple[int, int]:
    """Send every owed report (``manage.py cmi_saleor_reports``): (sent, still owed)."""
    owed = EventReport.objects.filter(sent_at__isnull=True)
    mappings = list(owed.order_by("mapping_id").values_list("mapping_id", flat=True).distinct())
    sent = sum(deliver(pk) for pk in mappings)
    return sent, owed.count()


def _mapping(payment: Payment) -> TransactionMap:
    """The payment's Saleor transaction, with its installation (what :func:`deliver` needs
    to send) and ``owed_before``: whether an earlier report is still owed (one query)."""
    earlier = EventReport.objects.filter(mapping=OuterRef("pk"), sent_at__isnull=True)
    try:
        mapping = (
            TransactionMap.objects.select_related("installation")
            .defer("installation__jwks")
            .annotate(owed_before=Exists(earlier))
            .get(payment=payment)
        )
    except TransactionMap.DoesNotExist:
        raise SaleorReportError(f"payment {payment.oid} has no Saleor transaction") from None
    mapping.payment = payment  # the row the change saved (money() reads its currency)
    return mapping


def psp_reference(payment: Payment) -> str:
    """CMI's TransId for the payment on every path: the callback's, else the one CMI's
    status API gave (an approval learned without a callback does not record it on the
    payment), else the oid."""
    if payment.trans_id:
        return payment.trans_id
    status = payment.operations.filter(kind="status", succeeded=True).first()
    if status is not None and isinstance(status.response, dict):
        trans_id = status.response.get("trans_id")
        if isinstance(trans_id, str) and trans_id.strip():
            return trans_id.strip()[:128]
    return payment.oid


def session_card(payment: Payment) -> dict[str, Any] | None:
    """The card for a sync answer (``paymentMethodDetails`` of Saleor's response schemas)."""
    details = card_details(payment)
    return {"type": "CARD", **details["card"]} if details else None


#: How long CMI keeps its payment page open when the request did not say (the most
#: ``sessiontimeout`` allows, guide §4.1.1): after it no attempt can follow.
LONGEST_SESSION = timedelta(seconds=2700)


def session_expired(payment: Payment) -> bool:
    """Whether CMI's payment page for ``payment`` can no longer take an attempt."""
    raw = str((payment.request_fields or {}).get("sessiontimeout") or "")
    seconds = int(raw) if raw.isdigit() and 30 <= int(raw) <= 2700 else 2700
    return timezone.now() > payment.updated_at + timedelta(seconds=seconds)


def came_back_failed(payment: Payment) -> bool:
    """Whether the shopper came back through the failUrl (a verified POST)."""
    return payment.callbacks.filter(kind="fail", verified=True).exists()


def decline_is_final(payment: Payment) -> bool:
    """A pending, declined payment whose attempt is over: the shopper came back through
    the failUrl, or CMI's session expired. Until then CMI's page takes another card."""
    state = PaymentState(payment.state)
    if not state.is_pending:
        return False
    if state is PaymentState.DECLINED and session_expired(payment):
        return True
    return came_back_failed(payment)


def failure_kind(payment: Payment) -> str:
    return "AUTHORIZATION_FAILURE" if payment.capture_mode == "manual" else "CHARGE_FAILURE"


def report_final_failure(payment: Payment, result: CallbackResult | None = None) -> None:
    """Tell Saleor the attempt failed for good (``*_FAILURE``, a final event): owed, and
    sent at once when no transaction is open (the failUrl view), else after the commit."""
    code = (result.proc_return_code if result else "") or payment.proc_return_code
    err = (result.err_code if result else "") or payment.error_code
    report(
        _mapping(payment),
        failure_kind(payment),
        amount=payment.amount,
        psp_reference=f"{payment.oid}-final",
        message=merchant_message(code or None, err or None),
        details=card_details(payment, result),
        url=external_url(payment),
    )


#: Saleor's names for the core's actions, in the order Saleor lists them.
_SALEOR_ACTIONS = ((Action.CAPTURE, "CHARGE"), (Action.REFUND, "REFUND"), (Action.VOID, "CANCEL"))


def actions_for(payment: Payment) -> list[str]:
    """What Saleor may still ask of this payment: :func:`cmi_core.effects.allowed_actions`
    in Saleor's words. A payment that needs attention offers Saleor nothing: staff settle
    it in the Django admin.

    Once money is captured only REFUND: CMI could still void a capture on its own day
    (guide §5.4), but Saleor books a ``CANCEL_SUCCESS`` as canceled *authorization* and
    never lowers its charged amount, so it would go on showing the order paid."""
    if payment.state == PaymentState.NEEDS_ATTENTION.value:
        return []
    allowed = allowed_actions(payment.status)
    names = [name for action, name in _SALEOR_ACTIONS if action in allowed]
    if payment.captured_amount:
        names = [name for name in names if name != "CANCEL"]
    return names


def _operation_reference(payment: Payment, kind: str, fallback: str) -> str:
    operation = payment.operations.filter(kind=kind, succeeded=True).first()
    trans_id = ""
    if operation is not None and isinstance(operation.response, dict):
        trans_id = str(operation.response.get("trans_id") or "")
    return trans_id or fallback


class SaleorHook(PaymentHook):
    """Reports each change to the Saleor transaction the payment was made for."""

    def handle(self, change: PaymentChange) -> None:
        if change.source == "platform":
            # Saleor asked for it: the webhook's own answer tells Saleor, except the
            # release of the remainder after a partial capture, which no answer carries
            released = change.effect(EffectKind.RELEASED)
            if released is not None:
                self.on_released(change, released)
            return
        super().handle(change)

    def on_released(self, change: PaymentChange, effect: Effect) -> None:
        """After a partial capture CMI lets the rest of the hold go (one PostAuth per
        order, guide §5.2): ``AUTHORIZATION_ADJUSTMENT`` to the captured amount.

        Saleor's calculation (``transaction_item_calculations``) makes an adjustment the
        new authorized total, from which the charges are then taken: authorized 0,
        charged what CMI took, nothing left that Saleor could ask to capture. A
        ``CANCEL_SUCCESS`` of the remainder would balance too, but would show a cancel
        nobody asked for. Owed like every report: until Saleor records it, Saleor shows
        the remainder authorized (CHARGE is not offered). A payment without a Saleor
        transaction is only logged: CMI already acted."""
        payment = change.payment
        captured = change.after.captured
        try:
            report(
                _mapping(payment),
                "AUTHORIZATION_ADJUSTMENT",
                amount=captured,
                psp_reference=f"{psp_reference(payment)}-released",
                message=f"CMI captured {format_money(captured, payment.currency, 'en')} and "
                f"released the rest ({format_money(effect.amount, payment.currency, 'en')}):"
                " one capture per order",
                actions=actions_for(payment),
                url=external_url(payment),
            )
        except SaleorReportError:
            logger.warning("could not tell Saleor that %s released the rest", payment.oid)

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        if change.has(EffectKind.CAPTURED):  # auto capture: reported once, as CHARGE_SUCCESS
            return
        payment, result = change.payment, change.result
        report(
            _mapping(payment),
            "AUTHORIZATION_SUCCESS",
            amount=payment.authorised_amount,
            psp_reference=(result.trans_id if result else "") or psp_reference(payment),
            message=f"CMI authorised, auth code {result.auth_code if result else ''}".strip(", "),
            actions=actions_for(payment),
            details=card_details(payment, result),
            url=external_url(payment),
        )

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        amount = effect.amount or Decimal(0)
        # the approval's result, when this capture came with it (auto capture)
        result = change.result if change.has(EffectKind.AUTHORISED) else None
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

    def on_declined(self, change: PaymentChange, effect: Effect) -> None:
        """An intermediate decline: ``INFO`` (the shopper may try another card); a final
        one (the failUrl return came first, or the session expired): ``*_FAILURE``."""
        payment, result = change.payment, change.result
        if decline_is_final(payment):
            report_final_failure(payment, result)
            return
        code = result.proc_return_code if result else ""
        err = result.err_code if result else ""
        report(
            _mapping(payment),
            "INFO",
            amount=payment.amount,
            psp_reference=(result.trans_id if result else "")
            or f"{payment.oid}-{payment.declined_attempts}",
            message=f"CMI declined an attempt (the shopper may try again): "
            f"{merchant_message(code or None, err or None)}",
            details=card_details(payment, result),
            url=external_url(payment),
        )

    def on_refunded(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        amount = effect.amount or Decimal(0)
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

    def on_voided(self, change: PaymentChange, effect: Effect) -> None:
        """A void of the authorisation: ``CANCEL_SUCCESS``. A same-day void of a capture
        (guide §5.4) gives the money back: ``REFUND_SUCCESS`` of what was still captured,
        so Saleor's charged amount goes down (a cancel never lowers it)."""
        payment = change.payment
        kept = change.before.captured - change.before.refunded
        if kept > 0:
            fallback = f"{psp_reference(payment)}-void"
            report(
                _mapping(payment),
                "REFUND_SUCCESS",
                amount=kept,
                psp_reference=_operation_reference(payment, "void", fallback),
                message=f"CMI voided the capture of {format_money(kept, payment.currency, 'en')}"
                " (same day): nothing is collected",
                actions=actions_for(payment),
                url=external_url(payment),
            )
            return
        report(
            _mapping(payment),
            "CANCEL_SUCCESS",
            amount=payment.authorised_amount or payment.amount,
            psp_reference=psp_reference(payment),
            message="CMI voided the payment",
            url=external_url(payment),
        )

    def on_flagged(self, change: PaymentChange, effect: Effect) -> None:
        """An INFO event; a payment without a Saleor transaction must not undo the flag."""
        payment = change.payment
        try:
            report(
                _mapping(payment),
                "INFO",
                amount=payment.amount,
                psp_reference=psp_reference(payment),
                message=f"CMI payment needs attention: {effect.reason}",
                url=external_url(payment),
            )
        except SaleorReportError:
            logger.warning("could not tell Saleor that %s needs attention", payment.oid)
