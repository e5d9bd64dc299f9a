"""Reconciliation: ask CMI about payments stuck before the end of their road, apply it.

Payments still pending (redirected, declined) or authorised, not updated for
``older_than`` minutes, get CMI's ORDERSTATUS; what CMI says is applied like
:func:`cmi_django.services.refresh` (hooks included). ``dry_run`` asks but saves nothing.
A payment abandoned on CMI's page stays pending (CMI knows no such order), so payments
created more than ``max_age`` days ago are left alone instead of being asked about on
every run forever; they are counted (``max_age=0``: no limit).

Payments with an open capture, void or refund (``pending`` past its call's deadline, or
``unknown``: the shop did not record CMI's answer) are checked too, whatever their state and
age: :func:`~cmi_django.services.refresh` settles each such operation from CMI's order
history (succeeded if CMI did it, failed if not) and never sends it again.

Run by ``manage.py cmi_reconcile`` (from cron) and by the task
:data:`cmi_django.tasks.reconcile` (``cmi_reconcile --enqueue``: the worker runs it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from cmi_core import PaymentState
from cmi_django import services
from cmi_django.models import Operation, Payment

__all__ = ["STUCK", "ReconcileSummary", "reconcile"]

logger = logging.getLogger("cmi_django")

STUCK = (PaymentState.REDIRECTED, PaymentState.DECLINED, PaymentState.AUTHORISED)


@dataclass(frozen=True)
class ReconcileSummary:
    """What a run did: payments checked, changed (or would change), failed, too old."""

    checked: int
    changed: int
    failed: int
    left_old: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _to_check(older_than: int, platform: str | None, max_age: int) -> tuple[list[Payment], int]:
    now = timezone.now()
    since = now - timedelta(minutes=older_than)
    stuck = Payment.objects.filter(state__in=[s.value for s in STUCK], updated_at__lt=since)
    if platform:
        stuck = stuck.filter(platform=platform)
    too_old = 0
    if max_age > 0:
        born = now - timedelta(days=max_age)
        too_old = stuck.filter(created_at__lt=born).count()
        stuck = stuck.filter(created_at__gte=born)
    open_ops = Payment.objects.filter(
        operations__state__in=Operation.OPEN,
        operations__kind__in=("capture", "void", "refund"),
    )
    if platform:
        open_ops = open_ops.filter(platform=platform)
    payments = list(
        Payment.objects.filter(Q(pk__in=stuck.values("pk")) | Q(pk__in=open_ops.values("pk")))
        .distinct()
        .order_by("created_at")
    )
    return payments, too_old


def reconcile(
    *,
    older_than: int = 30,
    platform: str | None = None,
    max_age: int = 7,
    dry_run: bool = False,
    say: Callable[[str], object] = logger.info,
    warn: Callable[[str], object] = logger.warning,
) -> ReconcileSummary:
    """Check the stuck payments with CMI (module docstring); ``say`` and ``warn`` get a
    line per payment (the command's output, or the log). Never raises for one payment:
    its error is counted in ``failed`` and reported through ``warn``."""
    payments, too_old = _to_check(older_than, platform, max_age)
    if too_old:
        say(f"{too_old} payment(s) created more than {max_age} day(s) ago left alone (--max-age)")
    say(f"{len(payments)} payment(s) to check")
    changed = failed = 0
    for payment in payments:
        before = payment.state
        opened = set(
            payment.operations.filter(state__in=Operation.OPEN).values_list("pk", flat=True)
        )
        try:
            if dry_run:
                check = services.check_status(payment)
                after = check.after.state.value
            else:
                services.refresh(payment, user="cmi_reconcile", source="reconcile")
                after = payment.state
        except services.OperationPendingError as exc:  # its call may still be running
            say(f"{payment.oid}: left for the next run: {exc.reason}")
            continue
        except Exception as exc:  # noqa: BLE001 - reported, then on to the next one
            failed += 1
            warn(f"{payment.oid}: error: {exc}")
            continue
        for operation in Operation.objects.filter(pk__in=opened).order_by("pk"):
            if operation.state not in Operation.OPEN:
                say(
                    f"{payment.oid}: {operation.kind} {operation.amount or ''} "
                    f"(key {operation.key}) settled as {operation.state} from CMI's history"
                )
        verb = "would move" if dry_run else "moved"
        if after != before:
            changed += 1
            say(f"{payment.oid}: {verb} {before} -> {after}")
        else:
            say(f"{payment.oid}: unchanged ({before})")
    moved = "would change" if dry_run else "changed"
    say(f"done: {len(payments)} checked, {changed} {moved}, {failed} failed")
    return ReconcileSummary(len(payments), changed, failed, too_old)
