"""Where the shared Django layer does its work: persist what the core decides.

- :func:`create_payment`: the row (REDIRECTED) and the signed form (guide §4.1).
- :func:`handle_callback`: the §4.2.1 path in one transaction: find the oid (unverified,
  only to choose the store key), verify the hash with that payment's config, lock the row
  (``select_for_update``), decide with :func:`cmi_core.decide_callback`, save, call the
  platform hook, log. Any exception rolls back; the log row is then written on its own and
  the reply is ``FAILURE``. Never raises.
- :func:`handle_return`: the okUrl/failUrl POST (§4.2.2): verify; a verified approval the
  callback has not delivered yet goes through the same path, decided as manual capture
  (CMI got no ``ACTION=POSTAUTH``), then captured through the API after the commit when
  the payment was in auto mode and an API user is configured.
- :func:`capture`, :func:`void`, :func:`refund`: money-moving operations through
  :class:`cmi_core.CMIClient`, sent at most once per intent on every database: a short
  locked transaction consults the state machine and the amounts open refunds promise
  (an illegal move raises :class:`cmi_core.TransitionError` and sends nothing) and commits
  a ``pending`` :class:`Operation`; CMI is called with no lock held; a second short
  transaction records the answer. An idempotency ``key`` that already succeeded returns
  its :class:`Operation`; one pending or unknown raises :class:`OperationPendingError`.
- :func:`refresh`: CMI's ORDERSTATUS (and ORDERHISTORY) asked with no lock held, applied
  under a short one; it settles open operations from CMI's history, never re-sending them.

The platform hook runs once per change, inside the transaction, after the row is saved.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Literal
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from cmi_core import (
    APIError,
    APIResult,
    APITransportError,
    Binding,
    CallbackError,
    CallbackResult,
    CMIClient,
    CMIConfig,
    Decision,
    Event,
    OrderHistory,
    OrderNotFoundError,
    OrderState,
    OrderStatus,
    Outcome,
    PaymentOrder,
    PaymentRequest,
    PaymentState,
    PaymentStatus,
    Reply,
    SignatureError,
    TransitionError,
    apply,
    build_payment_request,
    decide_callback,
    shopper_message,
    verify_callback,
)
from cmi_core.codes import CANNOT_PROCESS, TECHNICAL
from cmi_django import signals
from cmi_django.config import get_config
from cmi_django.hooks import RetryableHookError, get_hook
from cmi_django.models import CallbackLog, Operation, Payment

__all__ = [
    "MAX_BODY",
    "BadBodyError",
    "CallbackOutcome",
    "OperationPendingError",
    "PlatformHookError",
    "ReturnOutcome",
    "StatusCheck",
    "approve_without_callback",
    "callback_url",
    "capture",
    "check_status",
    "create_payment",
    "flag",
    "handle_callback",
    "handle_callback_body",
    "handle_return",
    "new_oid",
    "parse_body",
    "refresh",
    "refund",
    "void",
]

logger = logging.getLogger("cmi_django")

#: Larger callback or return bodies are refused unread (CMI's are a few KiB).
MAX_BODY = 64 * 1024
MAX_FIELDS = 500
_OID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LANGS = ("fr", "en", "ar")
_MONEY_KINDS = ("capture", "void", "refund")


# -- reading what CMI posts --------------------------------------------------------------


class BadBodyError(ValueError):
    """A POST body that is not a readable form (too big, not UTF-8, repeated fields)."""


def parse_body(body: bytes) -> dict[str, str]:
    """CMI's form-encoded UTF-8 body as a dict; :class:`BadBodyError` when it is not one."""
    if len(body) > MAX_BODY:
        raise BadBodyError(f"body larger than {MAX_BODY} bytes")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeError:
        raise BadBodyError("body is not UTF-8") from None
    except ValueError:
        raise BadBodyError(f"body has more than {MAX_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadBodyError(f"field {name[:40]!r} sent more than once")
        fields[name] = value
    return fields


def _oid_of(fields: Mapping[str, str]) -> str:
    return (fields.get("oid") or fields.get("ReturnOid") or "").strip()


def _find(oid: str) -> Payment | None:
    """The payment an oid names, unlocked and unverified (only to choose its config)."""
    if not _OID.match(oid):
        return None
    return Payment.objects.filter(oid=oid).first()


def _verify(payment: Payment, fields: Mapping[str, str]) -> tuple[CallbackResult | None, str]:
    """Verify the hash with the payment's store key and bind the result to its request.

    A payment made before requests were kept (no ``request_fields``) is verified unbound:
    its approvals then need CMI's confirmation (:func:`_confirmed`).
    """
    config = get_config(payment.config_key)
    expected = payment.request_fields or None
    try:
        result = verify_callback(
            fields, config.store_key, expected=expected, readings=config.hash_readings
        )
        return result, ""
    except (SignatureError, CallbackError) as exc:
        return None, str(exc)


def _confirmed(payment: Payment, result: CallbackResult | None) -> bool:
    """For an approval not strictly bound to its request: does CMI confirm it?

    Asks CMI's status API (ORDERSTATUS), outside any transaction and lock: confirmed when
    CMI holds the order authorised or captured (PRE, POST) for the payment's amount. A
    strictly bound result, a decline, or a config without an API user: False (a loose
    approval is then refused; CMI is answered FAILURE and keeps the authorisation for
    the merchant to handle, as the guide says of FAILURE).
    """
    if result is None or not result.approved or result.binding is Binding.STRICT:
        return False
    config = get_config(payment.config_key)
    if not config.has_api_user:
        logger.warning(
            "CMI result for %s is not strictly bound (%s) and no API user can confirm it",
            payment.oid,
            result.binding_note or "no request kept",
        )
        return False
    try:
        with CMIClient(config) as client:
            order = client.status(payment.oid, payment.currency)
    except OrderNotFoundError:
        return False
    except APIError as exc:
        logger.warning("CMI could not confirm the result for %s: %s", payment.oid, exc)
        return False
    return order.state in (OrderState.PRE, OrderState.POST) and order.amount == payment.amount


def _clip(value: str, field: str) -> str:
    return value[: Payment._meta.get_field(field).max_length]


def _loggable(fields: Mapping[str, str]) -> dict[str, str]:
    """Received fields as JSON can hold them (PostgreSQL refuses NUL characters)."""
    return {
        str(k).replace("\x00", "\ufffd"): str(v).replace("\x00", "\ufffd")
        for k, v in fields.items()
    }


# -- outcomes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackOutcome:
    """What :func:`handle_callback` did: ``reply`` is the exact body to answer CMI with."""

    reply: str
    payment: Payment | None
    decision: Decision | None
    verified: bool = False
    error: str = ""
    reading: str = ""  # the hash reading that verified (CallbackResult.reading)


@dataclass(frozen=True)
class ReturnOutcome:
    """What :func:`handle_return` found: where to send the shopper, what to tell them.

    ``approved``: the hash is good and the payment is paid. ``shopper_message`` is
    shopper-safe (guide §3.1), in the payment's language, empty when approved.
    """

    payment: Payment | None
    approved: bool
    verified: bool
    shopper_message: str
    kind: str = "ok"
    result: CallbackResult | None = None


# -- hooks ------------------------------------------------------------------------------


def _notify(
    payment: Payment,
    before: PaymentStatus,
    after: PaymentStatus,
    result: CallbackResult | None = None,
) -> None:
    """Call the platform hook, then send the signal, for each change between two statuses.

    Callbacks: CALLBACK_AUTHORISED -> authorised, CAPTURE -> captured, CALLBACK_DECLINED ->
    declined, FLAG -> needs_attention; staff operations and status syncs likewise.
    """
    hook = get_hook(payment.platform)
    sender = Payment
    if after.authorised and not before.authorised and result is not None:
        hook.authorised(payment, result)
        signals.payment_authorised.send(sender, payment=payment, result=result)
    if after.captured > before.captured:
        amount = after.captured - before.captured
        hook.captured(payment, amount)
        signals.payment_captured.send(sender, payment=payment, amount=amount)
    if after.declined_attempts > before.declined_attempts and result is not None:
        hook.declined(payment, result)
        signals.payment_declined.send(sender, payment=payment, result=result)
    if after.refunded > before.refunded:
        amount = after.refunded - before.refunded
        hook.refunded(payment, amount)
        signals.payment_refunded.send(sender, payment=payment, amount=amount)
    if after.state is PaymentState.VOIDED and before.state is not PaymentState.VOIDED:
        hook.voided(payment)
        signals.payment_voided.send(sender, payment=payment)
    if after.state is PaymentState.NEEDS_ATTENTION and (
        before.state is not PaymentState.NEEDS_ATTENTION
        or after.attention_reason != before.attention_reason
    ):
        hook.needs_attention(payment, after.attention_reason)
        signals.payment_needs_attention.send(sender, payment=payment, reason=after.attention_reason)


# -- creating a payment -----------------------------------------------------------------


def new_oid(prefix: str = "cmi") -> str:
    """A fresh, CMI-safe oid ``<prefix>-<12 random digits>`` not used by any payment."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-")[:48] or "cmi"
    while True:
        oid = f"{clean}-{secrets.randbelow(10**12):012d}"
        if not Payment.objects.filter(oid=oid).exists():
            return oid


def callback_url(request: Any = None) -> str | None:
    """The absolute URL of :func:`cmi_django.views.callback_view` (``cmi_django:callback``).

    Built from ``request`` when given, else from ``CMI_PUBLIC_URL``; None when neither
    is available or ``cmi_django.urls`` is not included with its namespace.
    """
    try:
        path = reverse("cmi_django:callback")
    except NoReverseMatch:
        return None
    if request is not None:
        return str(request.build_absolute_uri(path))
    base = getattr(settings, "CMI_PUBLIC_URL", None)
    return f"{base.rstrip('/')}{path}" if base else None


def create_payment(
    *,
    platform: str,
    reference: str,
    order: PaymentOrder | Mapping[str, Any],
    config_key: str = "default",
    data: Mapping[str, Any] | None = None,
) -> tuple[Payment, PaymentRequest]:
    """Store a REDIRECTED payment and return it with its signed form (guide §4.1).

    ``order`` is a :class:`cmi_core.PaymentOrder` or its keyword arguments; a missing
    ``oid`` is made by :func:`new_oid` from ``platform``, a missing ``callback_url`` from
    ``CMI_PUBLIC_URL``. Raises :class:`cmi_core.ValidationError` naming a bad field.
    """
    config = get_config(config_key)
    if isinstance(order, PaymentOrder):
        values = {f.name: getattr(order, f.name) for f in dataclasses.fields(order)}
    else:
        values = dict(order)
    if not values.get("oid"):
        values["oid"] = new_oid(platform)
    if not values.get("callback_url"):
        values["callback_url"] = callback_url()
    neutral = PaymentOrder(**values)
    request = build_payment_request(config, neutral)
    fields = request.as_dict()
    payment = Payment(
        oid=fields["oid"],
        platform=platform,
        reference=str(reference)[:128],
        config_key=config_key,
        amount=neutral.amount,
        currency=fields["currency"],
        capture_mode=config.capture_mode,
        lang=fields["lang"],
        email=fields["email"],
        data=dict(data or {}),
        request_fields={k: v for k, v in fields.items() if k.lower() != "hash"},
    )
    payment.set_status(apply(PaymentStatus.new(neutral.amount), Event.redirect()))
    payment.save()
    return payment, request


# -- callbacks and returns --------------------------------------------------------------


class PlatformHookError(Exception):
    """The platform hook raised after a *verified* callback or return was applied.

    Raised inside the transaction (so everything rolls back); carries the payment's pk and
    the hook's own exception, so that :func:`handle_callback` / :func:`handle_return` can
    flag the payment afterwards (a card was authorised: staff must know).
    """

    def __init__(self, payment_pk: int, error: Exception) -> None:
        super().__init__(_error_text(error))
        self.payment_pk = payment_pk
        self.error = error


def _notify_or_fail(
    payment: Payment,
    before: PaymentStatus,
    after: PaymentStatus,
    result: CallbackResult | None = None,
) -> None:
    """:func:`_notify` for a verified callback/return: a hook error becomes PlatformHookError."""
    try:
        _notify(payment, before, after, result)
    except Exception as exc:
        raise PlatformHookError(payment.pk, exc) from exc


def _record_result(payment: Payment, result: CallbackResult, outcome: Outcome) -> None:
    """Copy the callback's result fields onto the row (not saved)."""
    if outcome in (Outcome.CAPTURE, Outcome.AUTHORISE):
        payment.trans_id = _clip(result.trans_id, "trans_id")
        payment.auth_code = _clip(result.auth_code, "auth_code")
        payment.host_ref_num = _clip(result.host_ref_num, "host_ref_num")
    if outcome in (Outcome.CAPTURE, Outcome.AUTHORISE, Outcome.DECLINED):
        code = result.err_code or (result.error.system_code if result.error else "")
        payment.masked_pan = _clip(result.masked_pan, "masked_pan")
        payment.card_brand = _clip(result.card_brand, "card_brand")
        payment.proc_return_code = _clip(result.proc_return_code, "proc_return_code")
        payment.error_code = _clip(code, "error_code")


def _decide(
    payment: Payment, result: CallbackResult, *, as_manual: bool, confirmed: bool
) -> Decision:
    known = payment.known_payment()
    if as_manual:
        known = dataclasses.replace(known, capture_mode="manual")
    decision = decide_callback(result, known, confirmed=confirmed)
    if decision.needs_attention:
        logger.warning("CMI payment %s needs attention: %s", payment.oid, decision.message)
    elif decision.outcome is Outcome.UNCONFIRMED:
        logger.warning("CMI result for %s refused: %s", payment.oid, decision.message)
    return decision


def _decide_and_save(payment: Payment, result: CallbackResult, *, confirmed: bool) -> Decision:
    """A verified callback: decide with the core, save the status and fields, call the hook."""
    decision = _decide(payment, result, as_manual=False, confirmed=confirmed)
    if decision.outcome is Outcome.DUPLICATE and not payment.trans_id and result.trans_id:
        # The approval was learned from CMI's status API (no TransId kept from it): the
        # callback's own TransId is recorded now; nothing else changes.
        _record_result(payment, result, Outcome.AUTHORISE)
        payment.save()
    if not decision.changed or decision.status is None:
        return decision
    before = payment.status
    payment.set_status(decision.status)
    _record_result(payment, result, decision.outcome)
    payment.save()
    _notify_or_fail(payment, before, payment.status, result)
    return decision


def approve_without_callback(
    payment: Payment,
    result: CallbackResult,
    *,
    source: str,
    sync: PaymentStatus | None = None,
    confirmed: bool = False,
) -> str:
    """Apply an approval CMI's callback has not delivered (yet); return the outcome label.

    The one path for every approval learned without a callback: the okUrl POST
    (``source="okurl"``), ``refresh``/``cmi_reconcile`` and Saleor's process-session call
    (CMI's ORDERSTATUS). ``payment`` is locked by the caller (``select_for_update``), in its
    transaction; the caller calls the hook (:func:`_notify`) with the status from before.

    - okUrl (``sync`` None, ``result`` the verified POST): the core decides as for a
      callback in manual capture mode (amounts checked, a mismatch flags); the callback's
      TransId, auth code and card fields are recorded.
    - status (``sync`` the status CMI's answer leads to, ``result`` built from it): that
      status is applied; CMI's ORDERSTATUS TransId is *not* recorded (it may differ from the
      callback's, which would make the late callback a "second approval"): the later
      callback records its own; the auth code, host reference and card number are kept.

    Once paid this way the payment's ``capture_mode`` is ``"manual"``: CMI never got
    ``ACTION=POSTAUTH``, and a late duplicate callback is answered ``APPROVED`` (never
    ``ACTION=POSTAUTH``, which would make CMI capture behind our back). If it was
    ``"auto"``, it came from a pending state, it is now AUTHORISED and the config has an API
    user, :func:`capture` runs after the commit with ``key=f"{source}-capture"``; if that
    fails the payment is flagged (needs attention).
    """
    before = payment.status
    was_auto = payment.capture_mode == "auto"
    if sync is None:
        decision = _decide(payment, result, as_manual=True, confirmed=confirmed)
        label = decision.outcome.value
        if decision.changed and decision.status is not None:
            payment.set_status(decision.status)
            _record_result(payment, result, decision.outcome)
    else:
        label = "status_sync"
        payment.set_status(sync)
        payment.auth_code = payment.auth_code or _clip(result.auth_code, "auth_code")
        payment.host_ref_num = payment.host_ref_num or _clip(result.host_ref_num, "host_ref_num")
        payment.masked_pan = payment.masked_pan or _clip(result.masked_pan, "masked_pan")
    after = PaymentState(payment.state)
    if after.is_paid and not before.state.is_paid:
        payment.capture_mode = "manual"
    payment.save()
    if (
        was_auto
        and before.state.is_pending
        and after is PaymentState.AUTHORISED
        and get_config(payment.config_key).has_api_user
    ):
        pk = payment.pk
        transaction.on_commit(lambda: _capture_after_approval(pk, source))
    return label


def _write_log(payment: Payment | None, **values: Any) -> None:
    clean = {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in values.items()}
    CallbackLog.objects.create(payment=payment, **clean)


def _write_log_alone(payment_pk: int | None = None, **values: Any) -> None:
    """The log row of a failed exchange, in its own transaction; failures only logged."""
    try:
        with transaction.atomic():
            payment = Payment.objects.filter(pk=payment_pk).first() if payment_pk else None
            _write_log(payment, **values)
    except Exception:
        logger.exception("could not write the CMI callback log for oid %r", values.get("oid"))


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def handle_callback(fields: Mapping[str, str], *, remote_addr: str = "") -> CallbackOutcome:
    """CMI's server-to-server callback (guide §4.2.1). Never raises; see the module doc."""
    received = {str(k): str(v) for k, v in fields.items()}
    oid = _oid_of(received)
    log = {
        "oid": oid[:64],
        "kind": "callback",
        "fields": _loggable(received),
        "remote_addr": remote_addr[:64],
    }
    try:
        found, result, error = _verified(received, oid)
        confirmed = _confirmed(found, result) if found is not None else False
        with transaction.atomic():
            outcome, label = _callback(found, result, error, confirmed=confirmed)
            _write_log(
                outcome.payment,
                verified=outcome.verified,
                outcome=label,
                reply=outcome.reply,
                error=outcome.error,
                reading=outcome.reading,
                **log,
            )
    except PlatformHookError as failed:
        logger.exception("CMI callback for oid %r: the platform hook failed", oid[:64])
        outcome = CallbackOutcome(Reply.FAILURE.value, None, None, error=_error_text(failed.error))
        _write_log_alone(
            failed.payment_pk, reply=outcome.reply, outcome="error", error=outcome.error, **log
        )
        _flag_after_hook_failure(failed)
    except Exception as exc:
        logger.exception("CMI callback for oid %r failed; replying FAILURE", oid[:64])
        outcome = CallbackOutcome(Reply.FAILURE.value, None, None, error=_error_text(exc))
        _write_log_alone(reply=outcome.reply, outcome="error", error=outcome.error, **log)
    return outcome


def _flag_after_hook_failure(failed: PlatformHookError) -> None:
    """After the rollback: flag the payment, so staff learn a card was authorised.

    Only for verified callbacks and returns (a forged POST never gets this far), and not
    for a :class:`~cmi_django.hooks.RetryableHookError`. The reason names the hook's error
    class and message (the platform's own words, no secrets).
    """
    payment = Payment.objects.filter(pk=failed.payment_pk).first()
    if payment is None or isinstance(failed.error, RetryableHookError):
        return  # a temporary failure: CMI's retry brings the approval again
    reason = (
        "CMI approved this payment but the platform could not record it "
        f"({_error_text(failed.error)}); it was answered FAILURE: check it with CMI "
        "(refresh) and void it if it is not wanted"
    )
    try:
        flag(payment, reason[:1000])
    except Exception:
        logger.exception("could not flag payment %s after its hook failed", payment.oid)


def _verified(
    fields: dict[str, str], oid: str
) -> tuple[Payment | None, CallbackResult | None, str]:
    """The payment the oid names (unlocked) and the result verified and bound to it."""
    found = _find(oid)
    if found is None:
        return None, None, "no payment with this oid"
    result, error = _verify(found, fields)
    return found, result, error


def _callback(
    found: Payment | None, result: CallbackResult | None, error: str, *, confirmed: bool
) -> tuple[CallbackOutcome, str]:
    if found is None:
        logger.warning("CMI callback for an unknown oid: %s", error)
        decision = decide_callback(None, None)
        outcome = CallbackOutcome(decision.body, None, decision, error=error)
        return outcome, Outcome.UNKNOWN_ORDER.value
    if result is None:
        logger.warning("CMI callback for %s refused: %s", found.oid, error)
        decision = decide_callback(None, found.known_payment())
        return CallbackOutcome(decision.body, found, decision, error=error), decision.outcome
    payment = Payment.objects.select_for_update().get(pk=found.pk)
    decision = _decide_and_save(payment, result, confirmed=confirmed)
    error = decision.message if decision.reply is Reply.FAILURE else ""
    outcome = CallbackOutcome(decision.body, payment, decision, True, error, result.reading)
    return outcome, decision.outcome


def handle_callback_body(body: bytes, *, remote_addr: str = "") -> CallbackOutcome:
    """:func:`handle_callback` for a raw POST body; an unreadable one is logged, FAILURE."""
    try:
        fields = parse_body(body)
    except BadBodyError as exc:
        logger.warning("unreadable CMI callback from %s: %s", remote_addr, exc)
        outcome = CallbackOutcome(Reply.FAILURE.value, None, None, error=str(exc))
        sample = {"_body": body[:1024].decode("utf-8", "replace").replace("\x00", "\ufffd")}
        _write_log_alone(
            oid="",
            kind="callback",
            fields=sample,
            remote_addr=remote_addr[:64],
            reply=outcome.reply,
            outcome=Outcome.INVALID.value,
            error=outcome.error,
        )
        return outcome
    return handle_callback(fields, remote_addr=remote_addr)


def handle_return(
    fields: Mapping[str, str], *, kind: Literal["ok", "fail"], remote_addr: str = ""
) -> ReturnOutcome:
    """The shopper's okUrl/failUrl POST (guide §4.2.2). Never raises for bad input.

    An unverified POST (no hash, a wrong one, an unknown oid) gets ``payment=None``: it
    names a payment nobody proved is theirs, so nothing may be shown or done for it.
    """
    received = {str(k): str(v) for k, v in fields.items()}
    oid = _oid_of(received)
    log = {
        "oid": oid[:64],
        "kind": kind,
        "fields": _loggable(received),
        "remote_addr": remote_addr[:64],
    }
    try:
        found, result, error = _verified(received, oid)
        confirmed = _confirmed(found, result) if found is not None and kind == "ok" else False
        with transaction.atomic():
            outcome, label, error = _return(found, result, error, kind, confirmed=confirmed)
            logged = outcome.payment if outcome.verified else found
            reading = outcome.result.reading if outcome.result is not None else ""
            _write_log(
                logged,
                verified=outcome.verified,
                outcome=label,
                error=error,
                reading=reading,
                **log,
            )
    except PlatformHookError as failed:
        logger.exception("CMI %s return for oid %r: the platform hook failed", kind, oid[:64])
        _write_log_alone(failed.payment_pk, outcome="error", error=_error_text(failed.error), **log)
        _flag_after_hook_failure(failed)
        payment = Payment.objects.filter(pk=failed.payment_pk).first()
        lang = payment.lang if payment is not None and payment.lang in _LANGS else "fr"
        outcome = ReturnOutcome(payment, False, True, TECHNICAL.get(lang), kind)
    except Exception as exc:
        logger.exception("CMI %s return for oid %r failed", kind, oid[:64])
        outcome = ReturnOutcome(None, False, False, TECHNICAL.fr, kind)
        _write_log_alone(outcome="error", error=_error_text(exc), **log)
    return outcome


def _return(
    found: Payment | None,
    result: CallbackResult | None,
    error: str,
    kind: Literal["ok", "fail"],
    *,
    confirmed: bool,
) -> tuple[ReturnOutcome, str, str]:
    if found is None:
        return ReturnOutcome(None, False, False, CANNOT_PROCESS.fr, kind), "unknown_order", ""
    lang: Any = found.lang if found.lang in _LANGS else "fr"
    if result is None:
        logger.warning("CMI %s return for %s refused: %s", kind, found.oid, error)
        outcome = ReturnOutcome(None, False, False, CANNOT_PROCESS.get(lang), kind)
        return outcome, Outcome.INVALID.value, error
    payment, label = found, ("approved" if result.approved else "declined")
    if kind == "ok" and result.approved:
        payment = Payment.objects.select_for_update().get(pk=found.pk)
        if PaymentState(payment.state).is_pending:  # the callback has not come (yet)
            before = payment.status
            label = approve_without_callback(payment, result, source="okurl", confirmed=confirmed)
            _notify_or_fail(payment, before, payment.status, result)
    approved = PaymentState(payment.state).is_paid and result.approved
    message = "" if approved else shopper_message(result.proc_return_code, result.err_code, lang)
    return ReturnOutcome(payment, approved, True, message, kind, result), label, ""


def _capture_after_approval(pk: int, source: str) -> None:
    """Auto mode, approval learned without a callback: capture through the API, flag on failure."""
    payment = Payment.objects.get(pk=pk)
    if payment.state != PaymentState.AUTHORISED.value:  # flagged meanwhile, or captured
        return
    try:
        capture(payment, user=f"cmi_django ({source}, no callback)", key=f"{source}-capture")
    except Exception as exc:
        logger.exception("capture of %s after its approval (%s) failed", payment.oid, source)
        try:
            flag(payment, f"automatic capture after the {source} approval failed: {exc}"[:500])
        except Exception:
            logger.exception("could not flag payment %s", payment.oid)


def flag(payment: Payment, reason: str) -> bool:
    """Mark the payment NEEDS_ATTENTION (hook ``needs_attention``); False if not allowed."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        before = locked.status
        try:
            after = apply(before, Event.flag(reason))
        except TransitionError as exc:
            logger.warning("payment %s not flagged: %s", locked.oid, exc)
            return False
        locked.set_status(after)
        locked.save()
        _notify(locked, before, after)
    payment.refresh_from_db()
    return True


# -- staff operations -------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | Enum):
        return str(value.value if isinstance(value, Enum) else value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _api_error(exc: APIError) -> dict[str, Any]:
    return {
        "error": type(exc).__name__,
        "response": exc.response,
        "proc_return_code": exc.proc_return_code,
        "err_msg": exc.err_msg,
        "error_code": exc.error_code,
        "http_status": exc.http_status,
        "retryable": exc.retryable,
    }


def _api_config(payment: Payment) -> CMIConfig:
    config = get_config(payment.config_key)
    if not config.has_api_user:
        raise ImproperlyConfigured(
            f"CMI config {payment.config_key!r}: API_USERNAME and API_PASSWORD are needed "
            "for capture, void, refund and status (CMI's API user)"
        )
    return config


def _notify_after_operation(
    payment: Payment,
    before: PaymentStatus,
    operation: Operation,
    result: CallbackResult | None = None,
) -> Exception | None:
    """The hook after CMI accepted: its failure is kept apart (CMI's change is real)."""
    try:
        with transaction.atomic():
            _notify(payment, before, payment.status, result)
    except Exception as exc:
        logger.exception(
            "%s hook failed after the %s of %s", payment.platform, operation.kind, payment.oid
        )
        operation.error = f"CMI accepted; the platform hook failed: {type(exc).__name__}"
        operation.save(update_fields=["error"])
        return exc
    return None


class OperationPendingError(TransitionError):
    """An operation that may have moved money has not been settled: nothing was sent.

    Raised before CMI is called when the same idempotency key is pending or unknown, when
    a capture or void meets any other open operation, or a refund meets an open capture
    or void. :func:`refresh` (or ``manage.py cmi_reconcile``) settles open operations from
    CMI's order history once their call's deadline has passed.
    """


_POLL = 0.2  # seconds between two looks at an operation another request is sending
_OPEN_TEXT = {
    Operation.PENDING: "waiting for CMI's answer; refresh from CMI in a minute",
    Operation.UNKNOWN: "CMI's answer was lost; refresh from CMI to settle it",
}


class _SameKeyInFlightError(OperationPendingError):
    """The same key's call to CMI may still be running: its answer is worth waiting for."""


def _lock(pk: int) -> Payment:
    """The payment's row, locked until the end of the enclosing transaction.

    The first statement is a write (an UPDATE that changes nothing): on SQLite it takes the
    database's write lock at once, so a concurrent writer waits (``timeout``) instead of
    reading, then failing with "database is locked" when it writes, whatever the
    ``transaction_mode``; on PostgreSQL it locks the row like ``select_for_update``.
    """
    Payment.objects.filter(pk=pk).update(state=F("state"))
    return Payment.objects.select_for_update().get(pk=pk)


def _in_flight(config: CMIConfig) -> timedelta:
    """How long a pending operation's call may still be running (connect + read timeouts)."""
    return timedelta(seconds=2 * config.http_timeout + 5)


def _open_money(payment: Payment) -> list[Operation]:
    return list(
        payment.operations.filter(state__in=Operation.OPEN, kind__in=_MONEY_KINDS).order_by("id")
    )


def _begin(
    payment: Payment, kind: str, event: Event, *, amount: Decimal | None, user: str, key: str | None
) -> tuple[Operation, CMIConfig, bool]:
    """Step 1: record the intent (``pending``) and commit it, or refuse; nothing is sent.

    Returns the operation, the config and whether it is a new intent to send (False: the
    key already succeeded, its operation is returned as is).
    """
    with transaction.atomic():
        locked = _lock(payment.pk)
        if key is not None:
            same = (
                locked.operations.filter(kind=kind, key=key).exclude(state=Operation.FAILED).first()
            )
            if same is not None and same.state == Operation.SUCCEEDED:
                return same, get_config(locked.config_key), False
            horizon = timezone.now() - _in_flight(get_config(locked.config_key))
            if same is not None and same.state == Operation.PENDING and same.created_at > horizon:
                raise _SameKeyInFlightError(
                    locked.state, kind, f"this {kind} is being sent to CMI by another request"
                )
            if same is not None:
                raise OperationPendingError(
                    locked.state,
                    kind,
                    f"this {kind} was already sent to CMI ({_OPEN_TEXT[same.state]}); it is "
                    "not sent twice",
                )
        open_ops = _open_money(locked)
        if open_ops and (kind != "refund" or any(o.kind != "refund" for o in open_ops)):
            first = open_ops[0]
            raise OperationPendingError(
                locked.state,
                kind,
                f"a {first.kind} of this payment is {first.state} ({_OPEN_TEXT[first.state]})",
            )
        before = locked.status
        promised = before
        for pending in open_ops:  # refunds only: what they promise is no longer refundable
            promised = apply(promised, Event.refund(pending.amount or Decimal(0)))
        after = apply(promised, event)  # TransitionError: nothing is recorded nor sent
        config = _api_config(locked)
        if kind == "capture":
            amount = after.captured - promised.captured
        operation = Operation.objects.create(
            payment=locked,
            kind=kind,
            amount=amount,
            key=key,
            user=user[:150],
            state=Operation.PENDING,
            succeeded=False,
        )
    return operation, config, True


def _record(operation: Operation, event: Event, result: APIResult) -> Exception | None:
    """Step 3: CMI accepted: apply the event and mark the operation, in one short lock.

    An operation settled meanwhile (by :func:`refresh`) is left as it is. Returns the
    platform hook's failure, if any (CMI's change is recorded all the same).
    """
    with transaction.atomic():
        locked = _lock(operation.payment_id)
        current = Operation.objects.select_for_update().get(pk=operation.pk)
        if current.state != Operation.PENDING:
            return None
        before = locked.status
        current.state, current.succeeded = Operation.SUCCEEDED, True
        current.response = _jsonable(result)
        try:
            after = apply(before, event)
        except TransitionError as exc:  # CMI acted: keep its word, and ask staff to look
            current.error = f"CMI accepted; not applied here: {exc.reason}"[:1000]
            current.save()
            flag(locked, f"CMI accepted a {current.kind} the shop could not apply: {exc.reason}")
            return None
        locked.set_status(after)
        locked.save()
        if current.kind == "capture":
            current.amount = after.captured - before.captured
        current.save()
        operation.refresh_from_db()
        return _notify_after_operation(locked, before, current)


def _fail(operation: Operation, exc: Exception) -> None:
    """CMI's call failed: ``failed`` when CMI surely did nothing, else ``unknown``."""
    if isinstance(exc, APIError):
        sure = not isinstance(exc, APITransportError) or exc.retryable  # retryable: not sent
        response, error = _api_error(exc), str(exc)
    else:
        sure, response, error = False, {"error": type(exc).__name__}, _error_text(exc)
    state = Operation.FAILED if sure else Operation.UNKNOWN
    Operation.objects.filter(pk=operation.pk, state=Operation.PENDING).update(
        state=state, succeeded=False, response=response, error=error[:1000]
    )


def _operate(
    payment: Payment,
    kind: str,
    event: Event,
    call: Callable[[CMIClient, Payment], APIResult],
    *,
    amount: Decimal | None,
    user: str,
    key: str | None,
) -> Operation:
    """A money-moving operation, sent to CMI at most once per intent.

    1. :func:`_begin`: a short locked transaction decides (state machine, and the amounts
       open refunds already promise) and commits a ``pending`` operation; 2. CMI is called
       with no transaction of ours open and no lock held; 3. :func:`_record` applies CMI's
       answer under a short lock. A process that dies between 2 and 3 leaves the operation
       ``pending``: :func:`refresh` settles it from CMI's history, never by sending again.

    The same key sent again while its first call may still be running (a double click,
    Saleor's retry) waits for that call's outcome (at most the call's deadline): it then
    gets the succeeded operation, sends anew after a failure, or
    :class:`OperationPendingError` when the outcome is still unknown.
    """
    started = time.monotonic()
    while True:
        try:
            operation, config, new = _begin(payment, kind, event, amount=amount, user=user, key=key)
            break
        except _SameKeyInFlightError as exc:  # a double click, a retry: wait for the first one
            limit = _in_flight(get_config(payment.config_key)).total_seconds()
            if time.monotonic() - started > limit:
                raise OperationPendingError(exc.state, exc.event, exc.reason) from None
            time.sleep(_POLL)
    if not new:
        payment.refresh_from_db()
        return operation
    sent = Payment.objects.get(pk=payment.pk)
    try:
        with CMIClient(config) as client:
            result = call(client, sent)
    except Exception as exc:
        logger.warning("the %s of %s failed: %s", kind, sent.oid, exc)
        _fail(operation, exc)
        operation.refresh_from_db()
        payment.refresh_from_db()
        raise
    raised = _record(operation, event, result)
    operation.refresh_from_db()
    payment.refresh_from_db()
    if raised is not None:
        raise raised
    return operation


def capture(
    payment: Payment, amount: Decimal | None = None, *, user: str = "", key: str | None = None
) -> Operation:
    """Capture (PostAuth) ``amount``, or everything authorised (guide §5.2)."""
    return _operate(
        payment,
        "capture",
        Event.capture(amount),
        lambda client, p: client.capture(p.oid, amount, p.currency),
        amount=amount,
        user=user,
        key=key,
    )


def void(payment: Payment, *, user: str = "", key: str | None = None) -> Operation:
    """Cancel the authorisation or a same-day capture (guide §5.4)."""
    return _operate(
        payment,
        "void",
        Event.void(),
        lambda client, p: client.void(p.oid),
        amount=None,
        user=user,
        key=key,
    )


def refund(
    payment: Payment, amount: Decimal, *, user: str = "", key: str | None = None
) -> Operation:
    """Refund ``amount`` of what was captured (Credit, guide §5.3)."""
    return _operate(
        payment,
        "refund",
        Event.refund(amount),
        lambda client, p: client.refund(p.oid, amount, p.currency),
        amount=amount,
        user=user,
        key=key,
    )


@dataclass(frozen=True)
class StatusCheck:
    """CMI's view of a payment and what it would make of ours (nothing saved).

    ``order`` is None when CMI has no record of the oid (the shopper never paid).
    """

    order: OrderStatus | None
    event: Event
    before: PaymentStatus
    after: PaymentStatus

    @property
    def changes(self) -> bool:
        return self.after != self.before


@dataclass(frozen=True)
class _Answer:
    """What CMI said of an order: ORDERSTATUS (None: no record), ORDERHISTORY if asked."""

    order: OrderStatus | None
    history: OrderHistory | None


def _ask(client: CMIClient, payment: Payment, *, history: bool) -> _Answer:
    """ORDERSTATUS, and ORDERHISTORY when asked or when the order has refunds (§5)."""
    try:
        order: OrderStatus | None = client.status(payment.oid, payment.currency)
    except OrderNotFoundError:
        return _Answer(None, None)
    found = None
    if order is not None and (history or order.state is OrderState.RFND):
        found = client.history(payment.oid, payment.currency)
    return _Answer(order, found)


def _credits(answer: _Answer) -> list[Decimal]:
    """The amounts of the refunds (approved Credit lines) in CMI's history."""
    if answer.history is None:
        return []
    return [
        t.amount or Decimal(0)
        for t in answer.history.transactions
        if t.charge_type.strip().upper() == "C" and t.approved
    ]


def _sync_event(answer: _Answer) -> Event:
    order = answer.order
    if order is None:
        return Event.status_sync(None)
    match order.state:
        case OrderState.PRE:
            return Event.status_sync("PRE", order.amount)
        case OrderState.POST:
            return Event.status_sync("POST", order.amount, order.captured_amount)
        case OrderState.VOID:
            return Event.status_sync("VOID")
        case OrderState.RFND:
            refunded = sum(_credits(answer), Decimal(0)) or None
            return Event.status_sync("RFND", order.amount, order.captured_amount, refunded)
    return Event.status_sync(None)


def _check(client: CMIClient, payment: Payment) -> StatusCheck:
    answer = _ask(client, payment, history=False)
    event = _sync_event(answer)
    before = payment.status
    return StatusCheck(answer.order, event, before, apply(before, event))


def check_status(payment: Payment) -> StatusCheck:
    """Ask CMI (ORDERSTATUS) and compute the sync, without saving anything."""
    with CMIClient(_api_config(payment)) as client:
        return _check(client, payment)


def _settle(locked: Payment, answer: _Answer, config: CMIConfig) -> list[Operation]:
    """Decide the open money operations from CMI's answer (rows changed, not saved).

    Refunds are matched by amount to the Credit lines of CMI's history that no succeeded
    refund accounts for; a capture succeeded when CMI captured more than the shop knows;
    a void when CMI's order is VOID. What CMI's history does not show did not happen (the
    call's deadline has passed), so it is ``failed``. Nothing is ever sent again. A
    ``pending`` operation still within its call's deadline raises
    :class:`OperationPendingError`: its call may still be running.
    """
    open_ops = _open_money(locked)
    if not open_ops:
        return []
    horizon = timezone.now() - _in_flight(config)
    young = [o for o in open_ops if o.state == Operation.PENDING and o.created_at > horizon]
    needs_history = any(o.kind == "refund" for o in open_ops) and answer.order is not None
    if young or (needs_history and answer.history is None):
        raise OperationPendingError(
            locked.state,
            "status_sync",
            f"a {open_ops[0].kind} of this payment is being sent to CMI; refresh again in a minute",
        )
    unmatched = _credits(answer)
    done = locked.operations.filter(kind="refund", state=Operation.SUCCEEDED)
    for amount in done.values_list("amount", flat=True):
        if amount in unmatched:
            unmatched.remove(amount)
    order = answer.order
    cmi_captured = Decimal(0)
    if order is not None and order.state in (OrderState.POST, OrderState.RFND):
        cmi_captured = order.captured_amount or order.amount or Decimal(0)
    shop_captured = locked.captured_amount
    for operation in open_ops:
        happened = False
        if operation.kind == "refund" and operation.amount in unmatched:
            unmatched.remove(operation.amount)
            happened = True
        elif operation.kind == "capture" and cmi_captured > shop_captured:
            operation.amount, shop_captured, happened = (
                cmi_captured - shop_captured,
                cmi_captured,
                True,
            )
        elif operation.kind == "void":
            happened = order is not None and order.state is OrderState.VOID
        was = operation.state
        operation.state = Operation.SUCCEEDED if happened else Operation.FAILED
        operation.succeeded = happened
        operation.error = f"was {was}; settled from CMI's order history: " + (
            "CMI did it" if happened else "CMI has no trace of it, nothing was re-sent"
        )
    return open_ops


def _result_from_status(payment: Payment, order: OrderStatus) -> CallbackResult:
    """The approval CMI's status answer stands for, for hooks (no callback came)."""
    return CallbackResult(
        oid=payment.oid,
        approved=True,
        response=order.result.response,
        proc_return_code=order.proc_return_code or "00",
        amount=order.amount or payment.amount,
        currency=payment.currency,
        trans_id=order.trans_id,
        auth_code=order.auth_code,
        host_ref_num=order.host_ref_num,
        masked_pan=order.masked_pan,
        card_brand="",
        md_status=order.md_status,
        err_code="",
        err_msg="",
        transaction_date="",
        error=None,
        fields=dict(order.extra),
    )


def refresh(payment: Payment, *, user: str = "", source: str = "refresh") -> Operation:
    """Ask CMI for the order's status and apply it (STATUS_SYNC: PRE, POST, RFND, VOID).

    CMI is the authority: this is how a payment leaves NEEDS_ATTENTION, and how open
    (``pending`` past their call's deadline, or ``unknown``) captures, voids and refunds
    are settled from CMI's order history (:func:`_settle`), never by sending them again.
    CMI is asked with no transaction of ours open; its answer is applied under a short
    lock. A report the state machine refuses raises :class:`cmi_core.TransitionError`
    after recording the failed operation (:class:`OperationPendingError` while an
    operation's call may still be running); CMI's own errors raise
    :class:`cmi_core.APIError` likewise. An approval learned this way (the payment was
    not paid, CMI says it is) goes through :func:`approve_without_callback` with
    ``source`` (``"refresh"``, ``"reconcile"``, ``"saleor-process"``...): manual capture
    from then on, captured through the API after the commit when it was in auto mode.
    """
    config = _api_config(payment)
    record: dict[str, Any] = {"payment": payment, "kind": "status", "user": user[:150]}
    try:
        with CMIClient(config) as client:
            answer = _ask(client, payment, history=bool(_open_money(payment)))
    except APIError as exc:
        logger.warning("status of %s not applied: %s", payment.oid, exc)
        Operation.objects.create(
            state=Operation.FAILED, response=_api_error(exc), error=str(exc)[:1000], **record
        )
        payment.refresh_from_db()
        raise
    raised: Exception | None = None
    with transaction.atomic():
        locked = _lock(payment.pk)
        record["payment"] = locked
        try:
            settled = _settle(locked, answer, config)
            event = _sync_event(answer)
            before = locked.status
            after = apply(before, event)
        except TransitionError as exc:
            logger.warning("status of %s not applied: %s", locked.oid, exc)
            operation = Operation.objects.create(
                state=Operation.FAILED,
                response={"error": str(exc)},
                error=str(exc)[:1000],
                **record,
            )
            raised = exc
        else:
            for settled_operation in settled:
                settled_operation.save()
            order = answer.order
            result = _result_from_status(locked, order) if order is not None else None
            approval = result is not None and after.state.is_paid and not before.state.is_paid
            if approval and result is not None:
                approve_without_callback(locked, result, source=source, sync=after)
            else:
                if after != before:
                    locked.set_status(after)
                locked.save()
            response = _jsonable(order) if order is not None else {"state": None, "found": False}
            operation = Operation.objects.create(
                state=Operation.SUCCEEDED, succeeded=True, response=response, **record
            )
            raised = _notify_after_operation(locked, before, operation, result)
            if approval and raised is not None and not isinstance(raised, RetryableHookError):
                # the platform could not record the order: flagged, so nothing is captured
                flag(
                    locked,
                    f"CMI approved this payment but the platform hook failed "
                    f"({_error_text(raised)}); void it if it is not wanted"[:1000],
                )
    payment.refresh_from_db()
    if raised is not None:
        raise raised
    return operation
