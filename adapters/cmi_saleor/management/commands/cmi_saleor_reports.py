"""``manage.py cmi_saleor_reports``: send the ``transactionEventReport`` s Saleor is owed.

A payment change is committed with the report it owes Saleor
(:class:`~cmi_saleor.models.EventReport`), which is sent right after the commit. When
Saleor did not record it then (down, an error, the process stopped in between), it stays
owed: it goes with the next change of the same transaction, when Saleor next calls
``transactionProcess``, or from this command. Run it from cron beside ``cmi_reconcile``
(every few minutes). Each transaction's reports go in order; a report another process is
sending is left to it; Saleor records each once (same type and ``pspReference``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cmi_saleor.reports import deliver_all


class Command(BaseCommand):
    help = "Send Saleor the transaction event reports it has not recorded yet."

    def handle(self, *args: Any, **options: Any) -> None:
        sent, owed = deliver_all()
        self.stdout.write(f"{sent} report(s) sent to Saleor, {owed} still owed")
