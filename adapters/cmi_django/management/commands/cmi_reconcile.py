"""``manage.py cmi_reconcile``: ask CMI about payments stuck before the end of their road.

Payments still pending (redirected, declined) or authorised, not updated for
``--older-than`` minutes, get CMI's ORDERSTATUS; what CMI says is applied like
:func:`cmi_django.services.refresh` (hooks included). ``--dry-run`` asks but saves nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from cmi_core import PaymentState
from cmi_django import services
from cmi_django.models import Payment

STUCK = (PaymentState.REDIRECTED, PaymentState.DECLINED, PaymentState.AUTHORISED)


class Command(BaseCommand):
    help = "Ask CMI for the status of payments stuck as redirected or authorised, apply it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, default=30, metavar="MINUTES")
        parser.add_argument("--platform", default=None)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        since = timezone.now() - timedelta(minutes=options["older_than"])
        stuck = Payment.objects.filter(state__in=[s.value for s in STUCK], updated_at__lt=since)
        if options["platform"]:
            stuck = stuck.filter(platform=options["platform"])
        payments = list(stuck.order_by("created_at"))
        self.stdout.write(f"{len(payments)} payment(s) to check")
        changed = failed = 0
        for payment in payments:
            before = payment.state
            try:
                if options["dry_run"]:
                    check = services.check_status(payment)
                    after = check.after.state.value
                else:
                    services.refresh(payment, user="cmi_reconcile", source="reconcile")
                    after = payment.state
            except Exception as exc:  # noqa: BLE001 - reported, then on to the next one
                failed += 1
                self.stderr.write(f"{payment.oid}: error: {exc}")
                continue
            verb = "would move" if options["dry_run"] else "moved"
            if after != before:
                changed += 1
                self.stdout.write(f"{payment.oid}: {verb} {before} -> {after}")
            else:
                self.stdout.write(f"{payment.oid}: unchanged ({before})")
        self.stdout.write(f"done: {len(payments)} checked, {changed} changed, {failed} failed")
        if failed:
            raise CommandError(f"{failed} payment(s) could not be checked")
