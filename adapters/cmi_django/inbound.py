"""What CMI and the shopper post to the shop: the callback (guide §4.2.1) and the returns (§4.2.2).

- :func:`handle_callback`: the §4.2.1 path in one transaction: read the oid's payment
  once, locked (``select_for_update``), with its store key and what the platform needs
  (:func:`config_annotations`, :func:`register_callback_read`) in the same statement;
  verify the hash with that config and bind it to the request the shop signed; decide
  with :func:`cmi_core.decide_callback`, save, hand the change to the platform
  (:func:`cmi_django.changes.notify_or_fail`, ``source="callback"``), log. An approval
  that needs CMI's confirmation (not strictly bound, :func:`_confirmed`) leaves the
  transaction first: CMI is asked with no lock held, then the row is locked and read
  again and the decision made on it. A forged or tampered callback holds the row's lock
  only while its hash is checked and its log row written (then nothing changes). Any
  exception rolls back; the log row is then written on its own and the reply is
  ``FAILURE``. Never raises.
- :func:`handle_return`: the okUrl/failUrl POST: verify; a verified approval the callback
  has not delivered yet goes through :func:`approve_without_callback` (``source="return"``),
  whose rules are :mod:`cmi_core.approvals`.
- :func:`parse_body`: CMI's form-encoded body, refused when too big or repeated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.db.models import QuerySet

from cmi_core import (
    APIError,
    Binding,
    CallbackError,
    CallbackResult,
    CMIClient,
    Decision,
    OrderNotFoundError,
    OrderState,
    Outcome,
    PaymentState,
    PaymentStatus,
    Reply,
    SignatureError,
    decide_callback,
    shopper_message,
    verify_callback,
)
from cmi_core.approvals import Via, adopts_callback_trans_id, as_late_approval, late_approval
from cmi_core.codes import CANNOT_PROCESS, LANGUAGES, TECHNICAL
from cmi_django import statements
from cmi_django.changes import PlatformHookError, error_text, notify_or_fail
from cmi_django.config import config_annotations, config_of, get_config
from cmi_django.hooks import RetryableHookError, Source
from cmi_django.models import CallbackLog, Payment
from cmi_django.operations import flag

__all__ = [
    "MAX_BODY",
    "MAX_FIELDS",
    "BadBodyError",
    "CallbackOutcome",
    "ReturnOutcome",
    "approve_without_callback",
    "handle_callback",
    "handle_callback_body",
    "handle_return",
    "parse_body",
    "register_callback_read",
]

logger = logging.getLogger("cmi_django")


MAX_BODY = 64 * 1024


MAX_FIELDS = 500


_OID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


_LANGS = LANGUAGES


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


CallbackRead = Callable[[QuerySet[Payment]], QuerySet[Payment]]
_CALLBACK_READS: dict[str, CallbackRead] = {}


def register_callback_read(platform: str, fn: CallbackRead) -> None:
    """Let ``platform`` read what its hook needs with a callback's locked payment.

    ``fn(queryset)`` adds joins and annotations (``select_related`` of a reverse
    one-to-one, ``annotate``) to the query that reads and locks the payment; the hook then
    finds them on the payment instead of querying (Saleor: its transaction, installation
    and whether a report is owed). Only the payment's own row is locked
    (``select_for_update(of=("self",))``); what is joined is read as at that moment.
    """
    _CALLBACK_READS[platform] = fn
    statements.bump()


def _locked(oid: str) -> Payment | None:
    """The payment an oid names, locked (``select_for_update``), in one statement with its
    joinable config (:func:`cmi_django.config.config_annotations`) and what the platforms
    read with it (:func:`register_callback_read`). Inside the caller's transaction; the
    statement is compiled once (:func:`cmi_django.statements.first_locked`)."""
    if not _OID.match(oid):
        return None
    return statements.first_locked("cmi_django.inbound._locked", Payment, _locking, oid)


def _locking(oid: str) -> QuerySet[Payment]:
    query = Payment.objects.select_for_update(of=("self",)).filter(oid=oid)
    for read in _CALLBACK_READS.values():
        query = read(query)
    annotations = config_annotations(query.db)
    if annotations:
        query = query.annotate(**annotations)
    return query


def _verify(payment: Payment, fields: Mapping[str, str]) -> tuple[CallbackResult | None, str]:
    """Verify the hash with the payment's store key and bind the result to its request.

    A payment made before requests were kept (no ``request_fields``) is verified unbound:
    its approvals then need CMI's confirmation (:func:`_confirmed`).
    """
    config = config_of(payment)
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
    config = config_of(payment)
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
    limit: int | None = getattr(Payment._meta.get_field(field), "max_length", None)
    return value[:limit]


def _loggable(fields: Mapping[str, str]) -> dict[str, str]:
    """Received fields as JSON can hold them (PostgreSQL refuses NUL characters)."""
    return {
        str(k).replace("\x00", "\ufffd"): str(v).replace("\x00", "\ufffd")
        for k, v in fields.items()
    }


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


#: The columns :func:`_record_result` writes.
_RESULT_FIELDS = (
    "trans_id",
    "auth_code",
    "host_ref_num",
    "masked_pan",
    "card_brand",
    "proc_return_code",
    "error_code",
)
#: What a callback's decision saves: the status, the result fields, the time; not the
#: JSON columns (``data`` and ``request_fields`` are written once, at creation).
_DECIDED_FIELDS = (*Payment.STATUS_FIELDS, *_RESULT_FIELDS, "updated_at")


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
        known = as_late_approval(known)
    decision = decide_callback(result, known, confirmed=confirmed)
    if decision.needs_attention:
        logger.warning("CMI payment %s needs attention: %s", payment.oid, decision.message)
    elif decision.outcome is Outcome.UNCONFIRMED:
        logger.warning("CMI result for %s refused: %s", payment.oid, decision.message)
    return decision


def _decide_and_save(payment: Payment, result: CallbackResult, *, confirmed: bool) -> Decision:
    """A verified callback: decide with the core, save the status and fields, call the hook."""
    decision = _decide(payment, result, as_manual=False, confirmed=confirmed)
    if adopts_callback_trans_id(decision.outcome, payment.trans_id, result):
        # The approval was learned from CMI's status API (no TransId kept from it): the
        # callback's own TransId is recorded now; nothing else changes.
        _record_result(payment, result, Outcome.AUTHORISE)
        statements.update(payment, _DECIDED_FIELDS)
    if not decision.changed or decision.status is None:
        return decision
    before = payment.status
    payment.set_status(decision.status)
    _record_result(payment, result, decision.outcome)
    statements.update(payment, _DECIDED_FIELDS)
    try:
        notify_or_fail(payment, before, payment.status, source="callback", result=result)
    except PlatformHookError:
        # The UPDATE above is held (PostgreSQL) and sent before the hook's first query: if
        # it failed there, the callback's own write failed (the database, not the hook).
        # As through the ORM: FAILURE and no flag; CMI's retry brings the approval again.
        sent = statements.failure()
        if sent is not None:
            raise sent from None
        raise
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
    transaction; the caller hands the change to the platform
    (:func:`cmi_django.changes.notify`) with the status from before. The rules are
    :mod:`cmi_core.approvals`.

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
    user, the task :data:`cmi_django.tasks.capture_after_approval` is queued with the change
    (:func:`cmi_django.tasks.enqueue`): :func:`~cmi_django.operations.capture` with
    ``key=f"{source}-capture"`` runs after the commit, on the task worker; if that fails
    the payment is flagged (needs attention).
    ``source`` is a label; the change's :data:`~cmi_django.hooks.Source` is
    :func:`cmi_django.changes.source_of` of it (``okurl``: return, ``refresh``: sync,
    ``reconcile``: reconcile, anything else: platform).
    """
    before = payment.status
    mode: Literal["auto", "manual"] = "auto" if payment.capture_mode == "auto" else "manual"
    if sync is None:
        decision = _decide(payment, result, as_manual=True, confirmed=confirmed)
        label = decision.outcome.value
        if decision.changed and decision.status is not None:
            payment.set_status(decision.status)
            _record_result(payment, result, decision.outcome)
    else:
        label = "status_sync"
        payment.set_status(sync)
    plan = late_approval(
        before,
        payment.status,
        capture_mode=mode,
        has_api_user=get_config(payment.config_key).has_api_user,
        via=Via.STATUS if sync is not None else Via.RETURN,
    )
    if not plan.record_trans_id:  # the callback's TransId comes with the callback
        payment.auth_code = payment.auth_code or _clip(result.auth_code, "auth_code")
        payment.host_ref_num = payment.host_ref_num or _clip(result.host_ref_num, "host_ref_num")
        payment.masked_pan = payment.masked_pan or _clip(result.masked_pan, "masked_pan")
    if plan.capture_mode != mode:  # paid now: manual from now on
        payment.capture_mode = plan.capture_mode
    payment.save()
    if plan.capture_after:
        from cmi_django import tasks

        tasks.enqueue(tasks.capture_after_approval, payment.pk, source)
    return label


def _write_log(payment: Payment | None, **values: Any) -> None:
    clean = {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in values.items()}
    statements.insert(CallbackLog(payment=payment, **clean))


def _write_log_alone(payment_pk: int | None = None, **values: Any) -> None:
    """The log row of a failed exchange, in its own transaction; failures only logged."""
    try:
        with transaction.atomic():
            payment = Payment.objects.filter(pk=payment_pk).first() if payment_pk else None
            _write_log(payment, **values)
    except Exception:
        logger.exception("could not write the CMI callback log for oid %r", values.get("oid"))


def handle_callback(fields: Mapping[str, str], *, remote_addr: str = "") -> CallbackOutcome:
    """CMI's server-to-server callback (guide §4.2.1). Never raises; see the module doc."""
    received = {str(k): str(v) for k, v in fields.items()}
    oid = _oid_of(received)
    log: dict[str, Any] = {
        "oid": oid[:64],
        "kind": "callback",
        "fields": _loggable(received),
        "remote_addr": remote_addr[:64],
    }
    alias = router.db_for_write(Payment)
    found: Payment | None = None
    try:
        with _transaction(alias):
            found = _locked(oid)
            result, error = (
                _verify(found, received)
                if found is not None
                else (None, "no payment with this oid")
            )
            asks_cmi = _asks_cmi(result)
            if not asks_cmi:
                outcome = _callback_logged(found, result, error, log, confirmed=False)
        if asks_cmi:  # nothing written yet: ask CMI with no lock held, then lock again
            confirmed = _confirmed(found, result) if found is not None else False
            with _transaction(alias):
                payment = _locked(oid)
                outcome = _callback_logged(payment, result, error, log, confirmed=confirmed)
    except PlatformHookError as failed:
        logger.exception("CMI callback for oid %r: the platform hook failed", oid[:64])
        outcome = CallbackOutcome(Reply.FAILURE.value, None, None, error=error_text(failed.error))
        _write_log_alone(
            failed.payment_pk, reply=outcome.reply, outcome="error", error=outcome.error, **log
        )
        _flag_after_hook_failure(failed, "callback")
    except Exception as exc:
        logger.exception("CMI callback for oid %r failed; replying FAILURE", oid[:64])
        outcome = CallbackOutcome(Reply.FAILURE.value, None, None, error=error_text(exc))
        # linked to the payment the oid names, if it was found (staff see it there)
        found_pk = found.pk if found is not None else None
        _write_log_alone(found_pk, reply=outcome.reply, outcome="error", error=outcome.error, **log)
    return outcome


@contextmanager
def _transaction(alias: str) -> Iterator[None]:
    """The callback's transaction: on the payment's database (``alias``, the routers'
    ``db_for_write``; its BEGIN and COMMIT folded, :func:`cmi_django.statements.atomic`),
    inside one on the default database when that is another one, where the platform's
    hook writes the shop's models (an order): they roll back with the callback's own
    writes when it fails, and commit after them."""
    if alias == DEFAULT_DB_ALIAS:
        with statements.atomic(alias):
            yield
    else:
        with transaction.atomic(using=DEFAULT_DB_ALIAS), statements.atomic(alias):
            yield


def _flag_after_hook_failure(failed: PlatformHookError, source: Source) -> None:
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
        f"({error_text(failed.error)}); it was answered FAILURE: check it with CMI "
        "(refresh) and void it if it is not wanted"
    )
    try:
        flag(payment, reason[:1000], source=source)
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


def _asks_cmi(result: CallbackResult | None) -> bool:
    """Whether the decision needs :func:`_confirmed` (CMI's status API): a verified
    approval not strictly bound to the request the shop signed."""
    return result is not None and result.approved and result.binding is not Binding.STRICT


def _callback_logged(
    payment: Payment | None,
    result: CallbackResult | None,
    error: str,
    log: dict[str, Any],
    *,
    confirmed: bool,
) -> CallbackOutcome:
    """Decide on the locked ``payment``, save, and write the log row (in the caller's
    transaction)."""
    outcome, label = _callback(payment, result, error, confirmed=confirmed)
    _write_log(
        outcome.payment,
        verified=outcome.verified,
        outcome=label,
        reply=outcome.reply,
        error=outcome.error,
        reading=outcome.reading,
        **log,
    )
    return outcome


def _callback(
    found: Payment | None, result: CallbackResult | None, error: str, *, confirmed: bool
) -> tuple[CallbackOutcome, str]:
    """``found``: the payment, locked and read in this transaction (:func:`_locked`)."""
    if found is None:
        logger.warning("CMI callback for an unknown oid: %s", error)
        decision = decide_callback(None, None)
        outcome = CallbackOutcome(decision.body, None, decision, error=error)
        return outcome, Outcome.UNKNOWN_ORDER.value
    if result is None:
        logger.warning("CMI callback for %s refused: %s", found.oid, error)
        decision = decide_callback(None, found.known_payment())
        return CallbackOutcome(decision.body, found, decision, error=error), decision.outcome
    payment = found
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
    log: dict[str, Any] = {
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
        _write_log_alone(failed.payment_pk, outcome="error", error=error_text(failed.error), **log)
        _flag_after_hook_failure(failed, "return")
        payment = Payment.objects.filter(pk=failed.payment_pk).first()
        lang: Any = payment.lang if payment is not None and payment.lang in _LANGS else "fr"
        outcome = ReturnOutcome(payment, False, True, TECHNICAL.get(lang), kind)
    except Exception as exc:
        logger.exception("CMI %s return for oid %r failed", kind, oid[:64])
        outcome = ReturnOutcome(None, False, False, TECHNICAL.fr, kind)
        _write_log_alone(outcome="error", error=error_text(exc), **log)
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
            notify_or_fail(payment, before, payment.status, source="return", result=result)
    approved = PaymentState(payment.state).is_paid and result.approved
    message = "" if approved else shopper_message(result.proc_return_code, result.err_code, lang)
    return ReturnOutcome(payment, approved, True, message, kind, result), label, ""
