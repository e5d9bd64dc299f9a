"""What Saleor hears of a payment: :class:`SaleorHook` -> ``transactionEventReport``.

:mod:`cmi_django` calls the hook inside the change's transaction (the callback's, a
return's, a staff operation's), with the payment row saved and locked. The hook decides
what Saleor is told and owes it (:func:`cmi_saleor.reports.report`): the report is a row
written in that same transaction and sent after the commit, never from inside it
(:mod:`cmi_saleor.reports`, which also sends later what Saleor did not record then).

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

Pending requests (:class:`~cmi_saleor.models.PendingRequest`): a charge, refund or cancel
whose outcome was unknown when Saleor's webhook had to be answered, and a flagged
payment's ``transactionProcess``, were answered as pending (Saleor then shows a
``*_REQUEST`` event and never asks again). :func:`resolve_requests` reports each one's
success or failure under the request's own pspReference once it is known, from the hook
(:meth:`SaleorHook.handle`, before the change's own events, which then leave out what the
resolution already reported) and after the commit that settles an operation
(:func:`resolve_after_settlement`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cmi_django import statements
from cmi_django.display import format_money
from cmi_django.hooks import PaymentChange, PaymentHook
from cmi_django.i18n import gettext_in, paid_in
from django.db import connections, router, transaction
from django.db.models import BooleanField, Exists, OuterRef, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.urls import NoReverseMatch, get_resolver, get_urlconf, reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from cmi_core import PaymentState, merchant_message
from cmi_core.effects import Action, EffectKind, allowed_actions
from cmi_saleor import conf
from cmi_saleor.models import EventReport, PendingRequest, TransactionMap
from cmi_saleor.reports import (
    SaleorReportError,
    deliver,
    deliver_owed,
    money,
    report,
    send,
)

if TYPE_CHECKING:
    from cmi_django.models import Payment
    from cmi_django.statements import Probe

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
    "resolve_after_settlement",
    "resolve_requests",
    "say",
    "send",
]

logger = logging.getLogger("cmi_saleor")

_PAN = re.compile(r"^\s*([0-9]{4})[0-9]*[^0-9]+[^0-9]*?([0-9]{4})\s*$")


def say(payment: Payment, text: str, **values: object) -> str:
    """``text`` (a message id marked with ``gettext_noop``) in the shopper's language
    (``Payment.lang``, :func:`cmi_django.i18n.shopper_language`), its ``%(name)s``
    placeholders filled; a :class:`~decimal.Decimal` value is money, formatted in that
    language (:func:`cmi_django.display.format_money`, the payment's currency). CMI's
    callback and staff operations have no shopper request: without this, Saleor's
    events would be in the server's default language whoever paid (issue 13)."""
    # The catalog and the locale of that language, without activating it for the thread
    # (activating and restoring cost more than the rest of the report); with no language
    # of the site's (None), the active one's
    lang = paid_in(payment)
    shown = {
        name: format_money(value, payment.currency, lang) if isinstance(value, Decimal) else value
        for name, value in values.items()
    }
    return gettext_in(lang, text) % shown


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


#: The annotation :func:`callback_read` adds: whether a report was owed when the payment
#: was read.
_OWED_BEFORE = "_saleor_owed_before"


def callback_read(query: QuerySet[Payment]) -> QuerySet[Payment]:
    """What the hook needs, read with a callback's locked payment
    (:func:`cmi_django.inbound.register_callback_read`): the transaction, its installation
    and whether an earlier report is still owed; :func:`_mapping` then needs no query.

    The "owed" flag is read with the payment on SQLite only. On PostgreSQL (READ
    COMMITTED) a ``SELECT ... FOR UPDATE`` that waited for the row's lock returns the row
    as its holder committed it, but its subqueries see the snapshot taken before the wait:
    a report the holder owed Saleor would read as "nothing owed" and the callback's own
    report would overtake it. There :func:`_mapping` asks with one query, after the lock.
    (SQLite never commits on a stale read: a write after another writer's commit fails.)
    """
    # (not the installation's JWKS: only Saleor's webhooks are checked with it)
    query = query.select_related("saleor_transaction__installation").defer(
        "saleor_transaction__installation__jwks"
    )
    if connections[query.db].vendor != "sqlite":  # the payment's database, not default's
        return query.annotate(**{_OWED_BEFORE: Value(None, BooleanField())})
    return query.annotate(
        # S611: the SQL is built from the models' table and column names only, no input
        **{_OWED_BEFORE: RawSQL(_owed_sql(query.db), (), BooleanField())}  # noqa: S611
    )


@lru_cache(maxsize=8)
def _owed_sql(alias: str) -> str:
    """``EXISTS`` (an earlier report owed for the payment's transaction) as SQL: the ORM's
    ``Exists`` costs about 0.3 ms of Python to compile on every callback."""
    from cmi_django.models import Payment

    quote = connections[alias].ops.quote_name
    report, mapping = EventReport._meta, TransactionMap._meta
    payment = f"{quote(Payment._meta.db_table)}.{quote(str(Payment._meta.pk.column))}"
    tables = f"{quote(report.db_table)} r JOIN {quote(mapping.db_table)} m"
    joined = (
        f"r.{quote(str(report.get_field('mapping').column))} = m.{quote(str(mapping.pk.column))}"
    )
    owner = f"m.{quote(str(mapping.get_field('payment').column))}"
    # S608: the models' table and column names only, no input
    return f"EXISTS(SELECT 1 FROM {tables} ON {joined} WHERE {owner} = {payment})"  # noqa: S608


def _owed_now(mapping_pk: int) -> bool | Probe:
    """Whether a report is owed for the transaction map, asked now: one indexed query,
    held with the callback's writes when they are held (:func:`cmi_django.statements.probe`:
    then read in their statement, and known by the time :func:`report`'s delivery needs
    it). SQL prepared once: the ORM's ``exists()`` costs about 0.4 ms of Python to
    compile."""
    alias = router.db_for_write(EventReport)  # the callback's own database
    return statements.probe(_owed_now_sql(alias), [mapping_pk], using=alias, reads=(EventReport,))


@lru_cache(maxsize=4)
def _owed_now_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    report = EventReport._meta
    column = quote(str(report.get_field("mapping").column))
    # S608: the model's table and column names only; the pk is a parameter
    return f"EXISTS(SELECT 1 FROM {quote(report.db_table)} WHERE {column} = %s)"  # noqa: S608


def _mapping(payment: Payment) -> TransactionMap:
    """The payment's Saleor transaction, with its installation (what :func:`deliver` needs
    to send) and ``owed_before``: whether an earlier report is still owed (one query, none
    when :func:`callback_read` read them with the payment: that is used once, since a
    report owed since then would make ``owed_before`` out of date)."""
    read = _OWED_BEFORE in vars(payment)
    owed_before = vars(payment).pop(_OWED_BEFORE, None)
    if read and type(payment).saleor_transaction.is_cached(payment):
        cached = payment._state.fields_cache.get("saleor_transaction")
        if cached is None:
            raise SaleorReportError(f"payment {payment.oid} has no Saleor transaction")
        if owed_before is None:  # not read with the payment (callback_read): ask now
            owed_before = _owed_now(cached.pk)
        cached.owed_before = owed_before
        cached.payment = payment
        return cached
    earlier = EventReport.objects.filter(mapping=OuterRef("pk"))
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
        message=say(
            payment,
            gettext_noop("CMI declined the payment: %(reason)s"),
            reason=merchant_message(code or None, err or None),
        ),
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


#: The effect a request's family stands for: reported as its resolution, the hook does not
#: report it a second time (Saleor would count the money twice under two references).
_FAMILY_EFFECTS = {
    "AUTHORIZATION": EffectKind.AUTHORISED,
    "CHARGE": EffectKind.CAPTURED,
    "REFUND": EffectKind.REFUNDED,
    "CANCEL": EffectKind.VOIDED,
}


def _resolution(request: PendingRequest, payment: Payment) -> tuple[str, Decimal] | None:
    """The event type and amount that settle ``request``, or None while it is open.

    An operation's request follows its operation: succeeded -> ``<FAMILY>_SUCCESS`` of
    what CMI did, failed -> ``<FAMILY>_FAILURE``. A flagged payment's process request
    follows the payment once staff (or CMI's status) took it out of NEEDS_ATTENTION:
    a CHARGE request -> ``CHARGE_SUCCESS`` when CMI captured, else ``CHARGE_FAILURE``
    (an authorisation is reported as such by the change itself; capturing it is then a
    charge Saleor asks for like any other); an AUTHORIZATION request ->
    ``AUTHORIZATION_SUCCESS`` when the money is held or taken, else the failure. While
    the shopper may still pay (pending, no final decline), it stays open."""
    from cmi_django.models import Operation

    family = request.family
    operation = request.operation
    if operation is not None:
        if operation.state in Operation.OPEN:
            return None
        if operation.state != Operation.SUCCEEDED:
            return f"{family}_FAILURE", request.amount
        amount = operation.amount if operation.amount is not None else request.amount
        return f"{family}_SUCCESS", amount
    state = PaymentState(payment.state)
    if state is PaymentState.NEEDS_ATTENTION:
        return None
    if state.is_pending and not decline_is_final(payment):
        return None  # the shopper may still pay
    if family == "CHARGE" and payment.captured_amount and state is not PaymentState.VOIDED:
        return "CHARGE_SUCCESS", payment.captured_amount
    if family == "AUTHORIZATION" and payment.authorised_amount and state.is_paid:
        return "AUTHORIZATION_SUCCESS", payment.authorised_amount
    return f"{family}_FAILURE", request.amount


def _resolution_message(kind: str, amount: Decimal, payment: Payment) -> str:
    if kind.endswith("_SUCCESS"):
        return say(
            payment, gettext_noop("CMI confirmed the pending request: %(amount)s"), amount=amount
        )
    return say(
        payment,
        gettext_noop("CMI did not carry out the pending request of %(amount)s"),
        amount=amount,
    )


def resolve_requests(payment: Payment) -> list[tuple[str, Decimal]]:
    """Report the resolution of every open pending request of ``payment`` whose outcome
    is now known; returns the ``(family, amount)`` reported as a success.

    Raises :class:`SaleorReportError` when Saleor does not record one (it stays open, to
    be reported at the next occasion)."""
    succeeded: list[tuple[str, Decimal]] = []
    requests = PendingRequest.objects.select_related("mapping__installation", "operation").filter(
        mapping__payment=payment, resolved__isnull=True
    )
    for request in requests:
        found = _resolution(request, payment)
        if found is None:
            continue
        kind, amount = found
        with transaction.atomic():
            # Whoever marks it resolved reports it: the hook's path and the post_save path
            # may both get here; the row's own UPDATE decides, and the report is owed in
            # the same transaction (both commit or neither).
            claimed = PendingRequest.objects.filter(pk=request.pk, resolved__isnull=True).update(
                resolution=kind, resolved=timezone.now()
            )
            if not claimed:
                continue
            request.mapping.payment = payment
            report(
                request.mapping,
                kind,
                amount=amount,
                psp_reference=request.psp_reference,
                message=_resolution_message(kind, amount, payment),
                actions=actions_for(payment),
                url=external_url(payment),
            )
        if kind.endswith("_SUCCESS"):
            succeeded.append((request.family, amount))
    return succeeded


def _without_resolved(change: PaymentChange, succeeded: list[tuple[str, Decimal]]) -> PaymentChange:
    """``change`` without the effects a resolution already reported to Saleor."""
    remaining = list(change.effects)
    for family, amount in succeeded:
        kind = _FAMILY_EFFECTS[family]
        match = next(
            (e for e in remaining if e.kind is kind and (e.amount in (None, amount))), None
        ) or next((e for e in remaining if e.kind is kind), None)
        if match is not None:
            remaining.remove(match)
            if kind is EffectKind.CAPTURED:  # auto capture: one CHARGE_SUCCESS, as always
                remaining = [e for e in remaining if e.kind is not EffectKind.AUTHORISED]
    return dataclasses.replace(change, effects=tuple(remaining))


def resolve_after_settlement(operation_pk: int) -> None:
    """After the commit that settled an operation Saleor was answered "pending" about:
    report the resolution (best effort; a refused report stays open for the next
    occasion, e.g. the payment's next change)."""
    request = (
        PendingRequest.objects.select_related("mapping__payment")
        .filter(operation_id=operation_pk, resolved__isnull=True)
        .first()
    )
    if request is None:
        return
    try:
        resolve_requests(request.mapping.payment)
    except SaleorReportError as exc:
        logger.warning("could not report the resolution of %s: %s", request, exc)


def on_operation_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` of :class:`cmi_django.models.Operation`: a settled operation with an
    open pending request is resolved after the commit (also when it failed, which
    changes no payment and so reaches no hook)."""
    if instance.state in ("pending", "unknown") or instance.kind not in (
        "capture",
        "refund",
        "void",
    ):
        return
    if PendingRequest.objects.filter(operation_id=instance.pk, resolved__isnull=True).exists():
        pk = instance.pk
        transaction.on_commit(lambda: resolve_after_settlement(pk))


class SaleorHook(PaymentHook):
    """Reports each change to the Saleor transaction the payment was made for."""

    def handle(self, change: PaymentChange) -> None:
        # Pending requests first: their resolution carries what the change would report.
        # A callback or return never settles one (they apply to unpaid payments only, and
        # never to a flagged one), so the shopper's path pays no query for it.
        if change.source not in ("callback", "return"):
            succeeded = resolve_requests(change.payment)
            if succeeded:
                change = _without_resolved(change, succeeded)
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
                message=say(
                    payment,
                    gettext_noop(
                        "CMI captured %(captured)s and released the rest (%(released)s): one"
                        " capture per order"
                    ),
                    captured=captured,
                    released=effect.amount or Decimal(0),
                ),
                actions=actions_for(payment),
                url=external_url(payment),
            )
        except SaleorReportError:
            logger.warning("could not tell Saleor that %s released the rest", payment.oid)

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        if change.has(EffectKind.CAPTURED):  # auto capture: reported once, as CHARGE_SUCCESS
            return
        payment, result = change.payment, change.result
        code = result.auth_code if result else ""
        report(
            _mapping(payment),
            "AUTHORIZATION_SUCCESS",
            amount=payment.authorised_amount,
            psp_reference=(result.trans_id if result else "") or psp_reference(payment),
            message=say(payment, gettext_noop("CMI authorised, auth code %(code)s"), code=code)
            if code
            else say(payment, gettext_noop("CMI authorised")),
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
            message=say(
                payment,
                gettext_noop("CMI captured %(amount)s, auth code %(code)s"),
                amount=amount,
                code=payment.auth_code,
            ),
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
            message=say(
                payment,
                gettext_noop("CMI declined an attempt (the shopper may try again): %(reason)s"),
                reason=merchant_message(code or None, err or None),
            ),
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
            message=say(payment, gettext_noop("CMI refunded %(amount)s"), amount=amount),
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
                message=say(
                    payment,
                    gettext_noop(
                        "CMI voided the capture of %(amount)s (same day): nothing is collected"
                    ),
                    amount=kept,
                ),
                actions=actions_for(payment),
                url=external_url(payment),
            )
            return
        report(
            _mapping(payment),
            "CANCEL_SUCCESS",
            amount=payment.authorised_amount or payment.amount,
            psp_reference=psp_reference(payment),
            message=say(payment, gettext_noop("CMI voided the payment")),
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
                message=say(
                    payment,
                    gettext_noop("CMI payment needs attention: %(reason)s"),
                    reason=effect.reason,
                ),
                url=external_url(payment),
            )
        except SaleorReportError:
            logger.warning("could not tell Saleor that %s needs attention", payment.oid)
