"""``manage.py cmi_reconcile``: ask CMI about payments stuck before the end of their road.

What it checks and how is :mod:`cmi_django.reconcile` (``--older-than`` minutes since the
last update, ``--max-age`` days since creation, ``--platform``, ``--dry-run``). From cron
it runs right here; ``--enqueue`` instead queues the task
:data:`cmi_django.tasks.reconcile` for the shop's task worker (``manage.py db_worker``
with the database backend) and prints the task's id.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cmi_django.reconcile import reconcile


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
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="queue the reconciliation for the task worker instead of running it here",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["enqueue"]:
            if options["dry_run"]:
                raise CommandError("--dry-run runs here: it cannot be combined with --enqueue")
            from cmi_django import tasks

            result = tasks.reconcile.enqueue(
                older_than=options["older_than"],
                platform=options["platform"],
                max_age=options["max_age"],
            )
            self.stdout.write(f"reconciliation queued as task {result.id}")
            return
        summary = reconcile(
            older_than=options["older_than"],
            platform=options["platform"],
            max_age=options["max_age"],
            dry_run=options["dry_run"],
            say=self.stdout.write,
            warn=self.stderr.write,
        )
        if summary.failed:
            raise CommandError(f"{summary.failed} payment(s) could not be checked")
