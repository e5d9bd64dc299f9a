"""Money-moving operations and flags: capture, void, refund, sent at most once per intent.

- :func:`capture`, :func:`void`, :func:`refund` (guide §5.2-§5.4) go through
  :class:`cmi_core.CMIClient` in three steps on every database: a short locked
  transaction consults the state machine and the amounts open refunds promise (an illegal
  move raises :class:`cmi_core.TransitionError` and sends nothing) and commits a
  ``pending`` :class:`~cmi_django.models.Operation`; CMI is called with no lock held; a
  second short transaction records the answer and hands the change to the platform
  (:func:`cmi_django.changes.notify`). An idempotency ``key`` that already succeeded
  returns its operation; one pending or unknown raises :class:`OperationPendingError`.
- :func:`flag`: mark a payment NEEDS_ATTENTION for staff.
- :func:`capture_after_approval`: the PostAuth an approval learned without a callback
  needs in auto mode (:mod:`cmi_core.approvals`), flagged when it fails.
- What :mod:`cmi_django.sync` shares: :func:`lock_payment`, :func:`open_money_operations`,
  :func:`in_flight` (how long a call may still run), :func:`notify_after_operation`.

Who started the change is the ``source`` keyword: ``staff`` unless a platform passes
``platform`` for an operation it asked for itself (it then learns the outcome from the
returned :class:`~cmi_django.models.Operation`, and its hook can tell).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cmi_core import (
    APIError,
    APIResult,
    APITransportError,
    CallbackResult,
    CMIClient,
    CMIConfig,
    ConfigurationError,
    Event,
    PaymentState,
    PaymentStatus,
    TransitionError,
    ValidationError,
    apply,
)
from cmi_core.jsonable import jsonable
from cmi_core.money import check_amount, get_currency
from cmi_django.changes import error_text, notify, source_of
from cmi_django.config import get_config
from cmi_django.hooks import Source
from cmi_django.models import Operation, Payment

__all__ = [
    "OperationPendingError",
    "accepted_anyway",
    "answer_by",
    "budget",
    "capture",
    "capture_after_approval",
    "flag",
    "refund",
    "void",
]

logger = logging.getLogger("cmi_django")

_MONEY_KINDS = ("capture", "void", "refund")


def flag(payment: Payment, reason: str, *, source: Source = "staff") -> bool:
    """Mark the payment NEEDS_ATTENTION (effect ``flagged``); False if not allowed."""
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
        notify(locked, before, after, source=source)
    payment.refresh_from_db()
    return True


def capture_after_approval(pk: int, label: str) -> None:
    """Auto mode, approval learned without a callback: capture through the API, flag on failure.

    ``label`` names how the approval was learned (``okurl``, ``refresh``, ``reconcile``,
    ``saleor-process``...): it makes the idempotency key ``f"{label}-capture"`` and the
    change's source (:func:`cmi_django.changes.source_of`).
    """
    payment = Payment.objects.get(pk=pk)
    if payment.state != PaymentState.AUTHORISED.value:  # flagged meanwhile, or captured
        return
    source = source_of(label)
    try:
        capture(
            payment,
            user=f"cmi_django ({label}, no callback)",
            key=f"{label}-capture",
            source=source,
        )
    except Exception as exc:
        logger.exception("capture of %s after its approval (%s) failed", payment.oid, label)
        mine = payment.operations.filter(kind="capture", key=f"{label}-capture")
        done = mine.filter(succeeded=True).exists()
        try:
            if done:  # the hook raised after CMI's capture: not to be captured again
                reason = (
                    f"CMI captured the payment after the {label} approval, but the shop "
                    f"could not record it all: {exc}"
                )
            elif mine.filter(state__in=Operation.OPEN).exists():  # no answer in time
                reason = (
                    f"CMI did not answer the automatic capture after the {label} approval "
                    f"({exc}): refresh to learn from CMI whether it was made"
                )
            else:
                reason = f"automatic capture after the {label} approval failed: {exc}"
            reason = reason[:500]
            flag(payment, reason, source=source)
        except Exception:
            logger.exception("could not flag payment %s", payment.oid)


def api_error_record(exc: APIError) -> dict[str, Any]:
    """What CMI refused, as an operation's ``response`` (no secret: CMI's own fields)."""
    return {
        "error": type(exc).__name__,
        "response": exc.response,
        "proc_return_code": exc.proc_return_code,
        "err_msg": exc.err_msg,
        "error_code": exc.error_code,
        "http_status": exc.http_status,
        "retryable": exc.retryable,
    }


def api_config(payment: Payment) -> CMIConfig:
    """The payment's config, which must have an API user (ImproperlyConfigured if not)."""
    config = get_config(payment.config_key)
    if not config.has_api_user:
        raise ImproperlyConfigured(
            f"CMI config {payment.config_key!r}: API_USERNAME and API_PASSWORD are needed "
            "for capture, void, refund and status (CMI's API user)"
        )
    return config


def notify_after_operation(
    payment: Payment,
    before: PaymentStatus,
    operation: Operation,
    result: CallbackResult | None = None,
    *,
    source: Source,
) -> Exception | None:
    """The hook after CMI accepted: its failure is kept apart (CMI's change is real)."""
    try:
        with transaction.atomic():
            notify(
                payment, before, payment.status, source=source, result=result, operation=operation
            )
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


def lock_payment(pk: int) -> Payment:
    """The payment's row, locked until the end of the enclosing transaction.

    The first statement is a write (an UPDATE that changes nothing): on SQLite it takes the
    database's write lock at once, so a concurrent writer waits (``timeout``) instead of
    reading, then failing with "database is locked" when it writes, whatever the
    ``transaction_mode``; on PostgreSQL it locks the row like ``select_for_update``.
    """
    Payment.objects.filter(pk=pk).update(state=F("state"))
    return Payment.objects.select_for_update().get(pk=pk)


def in_flight(config: CMIConfig) -> timedelta:
    """How long a pending operation's call may still be running: its whole deadline
    (``api_deadline``), or connect + read timeouts if longer, plus a margin. Until then
    no refresh settles it from CMI's history (which may not show it yet)."""
    return timedelta(seconds=max(2 * config.http_timeout, config.api_deadline) + 5)


def cut_to(config: CMIConfig, seconds: float) -> CMIConfig:
    """``config`` whose calls give up within ``seconds`` (its ``api_deadline`` and
    ``http_timeout`` cut to them): for a caller that cannot wait the whole deadline."""
    return dataclasses.replace(
        config,
        api_deadline=min(config.api_deadline, seconds),
        http_timeout=min(config.http_timeout, seconds),
    )


#: The monotonic time by which the request being handled must have its answer (a Saleor
#: webhook's budget), set by :func:`budget`; None: no such limit.
_ANSWER_BY: ContextVar[float | None] = ContextVar("cmi_answer_by", default=None)


@contextmanager
def budget(seconds: float | None) -> Iterator[None]:
    """Within the block, every money operation (:func:`_operate`) gives up on CMI by
    ``seconds`` from now, as if called with ``within`` (an earlier limit already set
    stands). For what a caller with a deadline runs without handing it on: an approval
    learned by Saleor's transactionProcess is captured in auto mode by a task
    (:func:`capture_after_approval`), which the tasks framework's immediate backend runs
    inside the call, after the status call took its share. ``None``: nothing changes."""
    if seconds is None:
        yield
        return
    by = time.monotonic() + seconds
    current = _ANSWER_BY.get()
    token = _ANSWER_BY.set(by if current is None else min(current, by))
    try:
        yield
    finally:
        _ANSWER_BY.reset(token)


def answer_by(within: float | None) -> float | None:
    """The ``time.monotonic()`` by which a caller allowing ``within`` seconds from now must
    be done, or earlier if :func:`budget` says so; None: no limit."""
    now = time.monotonic()
    left = _within(within, now)
    return None if left is None else now + left


def _within(within: float | None, started: float) -> float | None:
    """``within`` (seconds from ``started``), cut to what :func:`budget` leaves."""
    by = _ANSWER_BY.get()
    if by is None:
        return within
    left = by - started
    return left if within is None else min(within, left)


def accepted_anyway(
    payment: Payment,
    kind: str,
    exc: BaseException,
    *,
    label: str,
    key: str | None,
    user: str = "",
    since: int = 0,
) -> Operation | None:
    """The operation of one request that CMI accepted although ``exc`` was raised after
    it (the platform hook, a shop's receiver: ``ImproperlyConfigured``, a ``CMIError``,
    anything), so that the caller answers "accepted", never "refused" (staff or Saleor
    would ask again, under a new key). Only that request's own operation: its ``key``,
    else (no key) one of ``user``'s without a key; above id ``since`` (the last before
    the request). Logged as an error with ``exc``; None when CMI accepted nothing of it."""
    mine = payment.operations.filter(id__gt=since, kind=kind, succeeded=True)
    if key is not None:
        mine = mine.filter(key=key)
    else:
        mine = mine.filter(key__isnull=True, user=user[:150])
    done = mine.order_by("-id").first()
    if done is not None:
        logger.error(
            "%s of CMI payment %s: CMI accepted, then %s was raised",
            label,
            payment.oid,
            type(exc).__name__,
            exc_info=exc,
        )
        payment.refresh_from_db()
    return done


def open_money_operations(payment: Payment) -> list[Operation]:
    return list(
        payment.operations.filter(state__in=Operation.OPEN, kind__in=_MONEY_KINDS).order_by("id")
    )


def _begin(
    payment: Payment,
    kind: str,
    event: Event,
    *,
    amount: Decimal | None,
    user: str,
    key: str | None,
    uncaptured: bool = False,
) -> tuple[Operation, CMIConfig, bool]:
    """Step 1: record the intent (``pending``) and commit it, or refuse; nothing is sent.

    ``uncaptured``: refuse (TransitionError) once anything is captured, decided under the
    lock. Returns the operation, the config and whether it is a new intent to send (False:
    the key already succeeded, its operation is returned as is).
    """
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if key is not None:
            same = (
                locked.operations.filter(kind=kind, key=key).exclude(state=Operation.FAILED).first()
            )
            if same is not None and same.state == Operation.SUCCEEDED:
                return same, get_config(locked.config_key), False
            horizon = timezone.now() - in_flight(get_config(locked.config_key))
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
        open_ops = open_money_operations(locked)
        if open_ops and (kind != "refund" or any(o.kind != "refund" for o in open_ops)):
            first = open_ops[0]
            raise OperationPendingError(
                locked.state,
                kind,
                f"a {first.kind} of this payment is {first.state} ({_OPEN_TEXT[first.state]})",
            )
        before = locked.status
        if uncaptured and before.captured:
            raise TransitionError(
                locked.state, kind, "money was captured: only a refund gives it back"
            )
        promised = before
        for pending in open_ops:  # refunds only: what they promise is no longer refundable
            promised = apply(promised, Event.refund(pending.amount or Decimal(0)))
        after = apply(promised, event)  # TransitionError: nothing is recorded nor sent
        config = api_config(locked)
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


def _flag_source(source: Source) -> Source:
    """The source of a flag raised while recording an operation: the platform's own
    request is answered with the operation, not the flag, so the hook must report it."""
    return "sync" if source == "platform" else source


def _flag_recorded(payment: Payment, reason: str, *, source: Source) -> Exception | None:
    """:func:`flag` while an operation CMI accepted is recorded: what the hook or a
    receiver raises is returned, not raised (raised, it rolled the record back: CMI's
    approval was lost and the operation read as failed, to be sent again)."""
    try:
        flag(payment, reason, source=_flag_source(source))
    except Exception as exc:
        logger.exception("could not flag payment %s", payment.oid)
        return exc
    return None


def _synced_since(operation: Operation) -> bool:
    """Whether a refresh took CMI's amounts after the one that settled ``operation``
    (open until then, so the first successful refresh after it settled it)."""
    later = Operation.objects.filter(
        payment_id=operation.payment_id, kind="status", succeeded=True, pk__gt=operation.pk
    )
    return later[:2].count() > 1


def _record(
    operation: Operation, event: Event, result: APIResult, *, source: Source = "staff"
) -> Exception | None:
    """Step 3: CMI accepted: apply the event and mark the operation, in one short lock.

    An operation a :func:`refresh` settled as succeeded meanwhile is left as it is; one it
    settled as failed (CMI's history did not show it yet) is recorded as done: CMI's
    approval is the proof. If its key was sent again meanwhile (the failed settlement
    freed it), CMI did it twice: this one gives its key up (the other one holds it), both
    are recorded and the payment is flagged; if that retry is still open, it gives its key
    to this one (what CMI did holds the key, so a later retry is not sent again). If a
    later refresh took CMI's amounts (which may count it already), it is not applied
    again: the payment is flagged for a refresh.
    Returns the platform hook's failure, if any (CMI's change is recorded all the same).
    """
    with transaction.atomic():
        locked = lock_payment(operation.payment_id)
        current = Operation.objects.select_for_update().get(pk=operation.pk)
        if current.state == Operation.SUCCEEDED:
            return None
        before = locked.status
        settled_failed = current.state == Operation.FAILED  # by a refresh, meanwhile
        twice = ""
        if settled_failed and current.key is not None:
            other = (
                Operation.objects.filter(
                    payment_id=current.payment_id, kind=current.kind, key=current.key
                )
                .exclude(pk=current.pk)
                .exclude(state=Operation.FAILED)
                .first()
            )
            again = (
                f"CMI approved a {current.kind} a refresh had settled as failed, after "
                f"the same request (key {current.key}) was sent again"
            )
            if other is not None and other.state == Operation.SUCCEEDED:  # CMI acted twice
                twice = f"{again}: it was done twice"
                current.key, current.error = None, f"{twice} (see operation {other.pk})"[:1000]
            elif other is not None:
                # the retry's call is still open: the key stays with what CMI did (should
                # the retry fail, a later retry of the request must find it done, not send
                # it again); the retry keeps its own row, without the key
                twice = (
                    f"{again} (operation {other.pk}, still open): if CMI approves that one "
                    "too, it was done twice"
                )
                other.key = None
                gave = f"{twice}; this retry gave its key to operation {current.pk}"
                other.error = (f"{other.error}; {gave}" if other.error else gave)[:1000]
                other.save(update_fields=["key", "error"])
        current.state, current.succeeded = Operation.SUCCEEDED, True
        current.response = jsonable(result)
        if settled_failed and _synced_since(current):
            # a refresh after the one that failed it took CMI's amounts: they may count it
            reason = (
                f"CMI approved a {current.kind} of this payment after a refresh had settled "
                "it as failed, and a later refresh took CMI's amounts: not counted again; "
                "refresh to check"
            )
            if twice:
                reason = f"{twice}; {reason}"
            current.error = reason[:1000]
            current.save()
            failed = _flag_recorded(locked, reason[:500], source=source)
            operation.refresh_from_db()
            return failed
        try:
            after = apply(before, event)
        except TransitionError as exc:  # CMI acted: keep its word, and ask staff to look
            current.error = (
                f"{twice + '; ' if twice else ''}CMI accepted; not applied here: {exc.reason}"[
                    :1000
                ]
            )
            current.save()
            return _flag_recorded(
                locked,
                f"CMI accepted a {current.kind} the shop could not apply: {exc.reason}",
                source=source,
            )
        locked.set_status(after)
        locked.save()
        if current.kind == "capture":
            current.amount = after.captured - before.captured
        current.save()
        operation.refresh_from_db()
        raised = notify_after_operation(locked, before, current, source=source)
        if settled_failed:  # who heard it failed (the platform, staff) must hear it was done
            reason = twice or (
                f"CMI approved a {current.kind} of this payment after a refresh had settled it "
                "as failed (CMI's history did not show it yet): it was done"
            )
            failed = _flag_recorded(locked, reason, source=source)
            operation.refresh_from_db()
            raised = raised or failed
        return raised


def _fail(operation: Operation, exc: Exception) -> None:
    """CMI's call failed: ``failed`` when CMI surely did nothing, else ``unknown``."""
    if isinstance(exc, (ValidationError, ConfigurationError)):  # refused before sending
        sure, response, error = True, {"error": type(exc).__name__}, str(exc)
    elif isinstance(exc, APIError):
        sure = not isinstance(exc, APITransportError) or exc.retryable  # retryable: not sent
        response, error = api_error_record(exc), str(exc)
    else:
        sure, response, error = False, {"error": type(exc).__name__}, error_text(exc)
    state = Operation.FAILED if sure else Operation.UNKNOWN
    # Saved, not a queryset update: ``post_save`` tells who waits for this operation's
    # outcome (Saleor's pending request: cmi_saleor.hooks.on_operation_saved), as the
    # success's save in _record does. Under the payment's short lock, like _record and
    # refresh's settlement, so an operation settled meanwhile is left as it is.
    with transaction.atomic():
        lock_payment(operation.payment_id)
        current = (
            Operation.objects.select_for_update()
            .filter(pk=operation.pk, state=Operation.PENDING)
            .first()
        )
        if current is None:
            return
        current.state, current.succeeded = state, False
        current.response, current.error = response, error[:1000]
        current.save(update_fields=["state", "succeeded", "response", "error"])


def _operate(
    payment: Payment,
    kind: str,
    event: Event,
    call: Callable[[CMIClient, Payment], APIResult],
    *,
    amount: Decimal | None,
    user: str,
    key: str | None,
    source: Source,
    uncaptured: bool = False,
    within: float | None = None,
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

    ``within``: the seconds the caller can wait in all (Saleor gives up on a webhook
    after about 18 s and then books a failure for money CMI may have moved). The wait
    for the same key's first call and this call's deadline (``api_deadline``,
    ``http_timeout``) are cut to what is left of it: a call CMI has not answered by then
    is given up, its outcome ``unknown`` (settled from CMI's history by a refresh, never
    sent again), and the caller can answer "pending".
    """
    if isinstance(amount, Decimal) and amount.is_finite() and amount > 0:
        # what CMI cannot carry (more decimals than the currency, too many digits) is
        # refused now: once recorded, a call that fails to format it would be "unknown"
        check_amount(amount, get_currency(payment.currency))
    started = time.monotonic()
    within = _within(within, started)
    while True:
        try:
            operation, config, new = _begin(
                payment, kind, event, amount=amount, user=user, key=key, uncaptured=uncaptured
            )
            break
        except _SameKeyInFlightError as exc:  # a double click, a retry: wait for the first one
            limit = in_flight(get_config(payment.config_key)).total_seconds()
            if within is not None:
                limit = min(limit, within)
            if time.monotonic() - started > limit:
                raise OperationPendingError(exc.state, exc.event, exc.reason) from None
            time.sleep(_POLL)
    if not new:
        payment.refresh_from_db()
        return operation
    sent = Payment.objects.get(pk=payment.pk)
    if within is not None:  # what is left of the caller's wait, at least a second
        config = cut_to(config, max(within - (time.monotonic() - started), 1.0))
    try:
        with CMIClient(config) as client:
            result = call(client, sent)
    except Exception as exc:
        logger.warning("the %s of %s failed: %s", kind, sent.oid, exc)
        _fail(operation, exc)
        operation.refresh_from_db()
        payment.refresh_from_db()
        raise
    raised = _record(operation, event, result, source=source)
    operation.refresh_from_db()
    payment.refresh_from_db()
    if raised is not None:
        raise raised
    return operation


def capture(
    payment: Payment,
    amount: Decimal | None = None,
    *,
    user: str = "",
    key: str | None = None,
    source: Source = "staff",
    within: float | None = None,
) -> Operation:
    """Capture (PostAuth) ``amount``, or everything authorised (guide §5.2).
    ``within``: see :func:`_operate`."""
    return _operate(
        payment,
        "capture",
        Event.capture(amount),
        lambda client, p: client.capture(p.oid, amount, p.currency),
        amount=amount,
        user=user,
        key=key,
        source=source,
        within=within,
    )


def void(
    payment: Payment,
    *,
    user: str = "",
    key: str | None = None,
    source: Source = "staff",
    uncaptured: bool = False,
    within: float | None = None,
) -> Operation:
    """Cancel the authorisation or a same-day capture (guide §5.4).

    ``uncaptured``: only an authorisation, never a capture (TransitionError once anything
    is captured, checked under the payment's lock: a capture racing the request counts).
    ``within``: see :func:`_operate`.
    """
    return _operate(
        payment,
        "void",
        Event.void(),
        lambda client, p: client.void(p.oid),
        amount=None,
        user=user,
        key=key,
        source=source,
        uncaptured=uncaptured,
        within=within,
    )


def refund(
    payment: Payment,
    amount: Decimal,
    *,
    user: str = "",
    key: str | None = None,
    source: Source = "staff",
    within: float | None = None,
) -> Operation:
    """Refund ``amount`` of what was captured (Credit, guide §5.3). ``within``: see
    :func:`_operate`."""
    return _operate(
        payment,
        "refund",
        Event.refund(amount),
        lambda client, p: client.refund(p.oid, amount, p.currency),
        amount=amount,
        user=user,
        key=key,
        source=source,
        within=within,
    )
