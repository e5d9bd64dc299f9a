"""``manage.py cmi_reconcile``: ask CMI about payments stuck before the end of their road.

Payments still pending (redirected, declined) or authorised, not updated for
``--older-than`` minutes, get CMI's ORDERSTATUS; what CMI says is applied like
:func:`cmi_django.services.refresh` (hooks included). ``--dry-run`` asks but saves nothing.
A payment abandoned on CMI's page stays pending (CMI knows no such order), so payments
created more than ``--max-age`` days ago are left alone instead of being asked about on
every run forever; they are counted in the output (``--max-age 0``: no limit).

Payments with an open capture, void or refund (``pending`` past its call's deadline, or
``unknown``: the shop did not record CMI's answer) are checked too, whatever their state and
age: :func:`~cmi_django.services.refresh` settles each such operation from CMI's order
history (succeeded if CMI did it, failed if not) and never sends it again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from cmi_core import PaymentState
from cmi_django import services
from cmi_django.models import Operation, Payment

STUCK = (PaymentState.REDIRECTED, PaymentState.DECLINED, PaymentState.AUTHORISED)


class Command(BaseCommand):
    help = (
        "Ask CMI for the status of payments stuck as redirected, declined or authorised, apply it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, default=30, metavar="MINUTES")
        parser.add_argument("--platform", default=None)
        parser.add_argument(
            "--max-age",
            type=int,
            default=7,
            metavar="DAYS",
            help="leave alone payments created more than DAYS days ago (0: no limit)",
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        since = now - timedelta(minutes=options["older_than"])
        stuck = Payment.objects.filter(state__in=[s.value for s in STUCK], updated_at__lt=since)
        if options["platform"]:
            stuck = stuck.filter(platform=options["platform"])
        if options["max_age"] > 0:
            born = now - timedelta(days=options["max_age"])
            too_old = stuck.filter(created_at__lt=born).count()
            stuck = stuck.filter(created_at__gte=born)
            if too_old:
                self.stdout.write(
                    f"{too_old} payment(s) created more than {options['max_age']} day(s) ago "
                    "left alone (--max-age)"
                )
        open_ops = Payment.objects.filter(
            operations__state__in=Operation.OPEN,
            operations__kind__in=("capture", "void", "refund"),
        )
        if options["platform"]:
            open_ops = open_ops.filter(platform=options["platform"])
        payments = list(
            Payment.objects.filter(Q(pk__in=stuck.values("pk")) | Q(pk__in=open_ops.values("pk")))
            .distinct()
            .order_by("created_at")
        )
        self.stdout.write(f"{len(payments)} payment(s) to check")
        changed = failed = 0
        for payment in payments:
            before = payment.state
            opened = set(
                payment.operations.filter(state__in=Operation.OPEN).values_list("pk", flat=True)
            )
            try:
                if options["dry_run"]:
                    check = services.check_status(payment)
                    after = check.after.state.value
                else:
                    services.refresh(payment, user="cmi_reconcile", source="reconcile")
                    after = payment.state
            except services.OperationPendingError as exc:  # its call may still be running
                self.stdout.write(f"{payment.oid}: left for the next run: {exc.reason}")
                continue
            except Exception as exc:  # noqa: BLE001 - reported, then on to the next one
                failed += 1
                self.stderr.write(f"{payment.oid}: error: {exc}")
                continue
            for operation in Operation.objects.filter(pk__in=opened).order_by("pk"):
                if operation.state not in Operation.OPEN:
                    self.stdout.write(
                        f"{payment.oid}: {operation.kind} {operation.amount or ''} "
                        f"(key {operation.key}) settled as {operation.state} from CMI's history"
                    )
            verb = "would move" if options["dry_run"] else "moved"
            if after != before:
                changed += 1
                self.stdout.write(f"{payment.oid}: {verb} {before} -> {after}")
            else:
                self.stdout.write(f"{payment.oid}: unchanged ({before})")
        moved = "would change" if options["dry_run"] else "changed"
        self.stdout.write(f"done: {len(payments)} checked, {changed} {moved}, {failed} failed")
        if failed:
            raise CommandError(f"{failed} payment(s) could not be checked")
