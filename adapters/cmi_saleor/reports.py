"""Reports to Saleor: owed in the change's transaction, sent after its commit.

Every ``transactionEventReport`` the app makes (:mod:`cmi_saleor.hooks` decides what to
say) is first an :class:`~cmi_saleor.models.EventReport` row, written by :func:`report` in
the database transaction of the payment change it reports: the change and the news of it
commit together or not at all. Nothing is sent while that transaction is open or the
payment row locked (no network call under a lock or an open write transaction: on SQLite
every other writer would wait for Saleor's answer). Once the transaction commits,
:func:`deliver` sends it, still inside the request: for CMI's callback, before CMI gets its
reply, so Saleor learns at once.

A report Saleor does not record then (Saleor down, an error, a crash before the send)
stays owed and goes out later, in order, once: with the next change of the same Saleor
transaction, when Saleor next calls ``transactionProcess`` for it (:func:`deliver_owed`),
or from ``manage.py cmi_saleor_reports`` (:func:`deliver_all`, cron). A sender claims a
report (a conditional UPDATE) before sending it, so two never send it at once; Saleor
deduplicates events of the same type and ``pspReference`` (``alreadyProcessed``,
``ALREADY_EXISTS``), so a report sent again after a crash between Saleor's answer and the
row's update is recorded once (Saleor does not deduplicate ``INFO`` and
``*_ACTION_REQUIRED`` events: such a report resent after a crash shows twice in Saleor's
history, with no effect on its amounts; the lease, longer than a send, keeps two live
senders from sending it at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from cmi_django import statements
from cmi_django.afterreply import after_reply
from cmi_django.hooks import RetryableHookError
from cmi_django.operations import answer_by
from cmi_django.statements import Probe
from django.db import connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from cmi_core import format_amount, get_currency
from cmi_saleor import conf
from cmi_saleor.graphql import TRANSACTION_EVENT_REPORT, SaleorAPIError, execute
from cmi_saleor.models import EventReport, SaleorInstallation, TransactionMap

if TYPE_CHECKING:
    from cmi_django.models import Payment

__all__ = [
    "SaleorReportError",
    "deliver",
    "deliver_all",
    "deliver_owed",
    "money",
    "report",
    "send",
]

logger = logging.getLogger("cmi_saleor")


class SaleorReportError(RetryableHookError):
    """Saleor did not record a report (raised by :func:`send`), or a payment has no Saleor
    transaction to report to (retryable: the payment is not flagged)."""


def money(amount: Decimal, payment: Payment) -> str:
    """``amount`` as text with the payment currency's decimals (``"120.50"``)."""
    return format_amount(amount, get_currency(payment.currency))


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
    owed = statements.insert(  # held with the callback's other writes (one statement)
        EventReport(
            mapping=mapping,
            event_type=event_type,
            variables=variables,
            claimed_until=timezone.now() + _lease(),  # ours: sent by deliver() after the commit
        )
    )
    transaction.on_commit(
        partial(_deliver_reported, owed, getattr(mapping, "owed_before", True)), robust=True
    )
    return owed


def _deliver_reported(owed: EventReport, owed_before: bool | Probe) -> None:
    """:func:`deliver` after the commit of the report ``owed``. When nothing older was
    owed (the hook's own lookup, or its :class:`~cmi_django.statements.Probe`, read by
    then), deliver() need not look."""
    before = owed_before.value if isinstance(owed_before, Probe) else owed_before
    deliver(owed.mapping_id, claimed=(owed.pk,), ready=None if before else [owed])


def _lease() -> timedelta:
    """How long a sender holds a report: longer than a send can last, and a margin.

    A send is up to two attempts (:func:`cmi_saleor.graphql.execute` tries a broken
    kept-alive connection once more), each up to the connect and the read timeout: four
    times Saleor's timeout. A shorter lease let a second sender claim a report still being
    sent, and Saleor records an ``INFO`` (or ``*_ACTION_REQUIRED``) event once per send."""
    return timedelta(seconds=4 * conf.http_timeout() + 10)


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
    Inside a request Saleor waits for (:func:`cmi_django.operations.budget`), no send
    starts with less than :data:`_LEAST` seconds left (Saleor's whole timeout for a report
    Saleor records once per send, :func:`_least`), and each is cut to what is left:
    the rest stays owed.
    """
    sent = 0
    by = answer_by(None)
    try:
        owed = ready
        if owed is None:
            owed = list(
                EventReport.objects.filter(mapping_id=mapping_pk)
                .select_related("mapping__installation")
                .defer("mapping__installation__jwks")
                .order_by("id")
            )
        for index, item in enumerate(owed):
            if by is not None and by - time.monotonic() < _least(item):
                logger.info(
                    "no time left to send Saleor %s for %s (owed)",
                    item.event_type,
                    item.mapping.oid,
                )
                break  # Saleor stops waiting soon: what is left is sent later
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
            _forget(item)  # recorded: no longer owed
            sent += 1
        else:
            return sent
        _release([i.pk for i in owed[index:] if i.pk in claimed])
    except Exception:
        logger.exception("could not send what Saleor is owed for transaction map %s", mapping_pk)
    return sent


#: Seconds a send to Saleor needs at least to start inside a request Saleor waits for.
_LEAST = 1.0


def _least(item: EventReport) -> float:
    """Seconds ``item``'s send needs left to start inside a request Saleor waits for:
    :data:`_LEAST`, or Saleor's whole timeout for a report Saleor records once per send
    (``INFO``, ``*_ACTION_REQUIRED``). Such a send cut by the budget (its timeout cut to
    what is left, see :func:`cmi_saleor.graphql._timeout`) while Saleor was recording it
    would stay owed and be sent again: Saleor would show it twice."""
    return _LEAST if _deduplicated(item.event_type) else max(_LEAST, conf.http_timeout())


def _deduplicated(event_type: str) -> bool:
    """True when Saleor records a report of ``event_type`` sent twice once."""
    return event_type != "INFO" and not event_type.endswith("_ACTION_REQUIRED")


def _forget(item: EventReport) -> None:
    """Delete a report Saleor recorded: at once, or in CMI's callback once CMI has its
    reply (:mod:`cmi_django.afterreply`) when sending it again is harmless. Until then the
    row stays claimed by this sender; should the process die first, it is sent again once
    its lease ends, and Saleor answers ``alreadyProcessed`` for a report of the same type,
    amount and pspReference. Not for ``INFO`` and ``*_ACTION_REQUIRED``, which Saleor
    records once per send: those are deleted at once, as before."""
    if not (_deduplicated(item.event_type) and after_reply(partial(_delete, item.pk))):
        _delete(item.pk)


def _delete(pk: int) -> None:
    """One DELETE, its SQL built once. (``QuerySet.delete()`` issues the same statement,
    nothing refers to these rows, but wraps it in a transaction of its own: BEGIN and
    COMMIT, two more round trips after every first callback.)"""
    alias = router.db_for_write(EventReport)
    with connections[alias].cursor() as cursor:
        cursor.execute(_forget_sql(alias), [pk])


@lru_cache(maxsize=8)
def _forget_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    meta = EventReport._meta
    # S608: the model's table and column names, quoted; the id is a parameter
    return f"DELETE FROM {quote(meta.db_table)} WHERE {quote(str(meta.pk.column))} = %s"  # noqa: S608


def _claim(pk: int) -> bool:
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    claimed = EventReport.objects.filter(free, pk=pk)
    return claimed.update(claimed_until=now + _lease()) == 1


def _release(pks: list[int]) -> None:
    if pks:
        EventReport.objects.filter(pk__in=pks).update(claimed_until=None)


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
    if not EventReport.objects.filter(mapping=mapping).exists():
        return 0
    return deliver(mapping.pk)


def deliver_all() -> tuple[int, int]:
    """Send every owed report (``manage.py cmi_saleor_reports``): (sent, still owed)."""
    owed = EventReport.objects.order_by("mapping_id")
    mappings = list(owed.values_list("mapping_id", flat=True).distinct())
    sent = sum(deliver(pk) for pk in mappings)
    return sent, EventReport.objects.count()
