"""What CMI waits for: the Oscar callback with its e-mail in the request, or queued as a task.

    .venv/bin/python benchmarks/bench_followup.py [--callbacks 300]

Starts a throw-away PostgreSQL (``tests/pgserver.py``), creates the Oscar test database
and prepares distinct payments as ``bench_oscar_callback.py`` does, then posts their
signed, approved callbacks through Django's test client (the real view and middleware, in
this process), alternating callback by callback between two ``TASKS`` settings:

- ``immediate``: the immediate backend (the demos'). The order-placed e-mail task runs
  after the commit but before the reply, as the e-mail did before the tasks framework;
- ``database``: ``django-tasks-db`` (production's). The callback only writes the task's
  row in its transaction; CMI gets its reply, the worker sends the e-mail later.

Alternating pairs the two on the same machine state, so load from elsewhere falls on both
alike. Prints p50 and mean per mode, the difference (what CMI no longer waits for), the
SQL queries of one callback of each, then runs the worker (``db_worker --batch``) and
checks exactly once: one order and one debit per callback, one e-mail per order.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "tests.adapters.oscar.settings"


def post(client: Any, fields: dict[str, str]) -> tuple[float, float]:
    """One callback: its wall time and this process's CPU time, in milliseconds (the
    answer must be ACTION=POSTAUTH). The CPU time leaves out PostgreSQL's own work and
    time spent waiting for a CPU, so it holds still on a busy machine."""
    from urllib.parse import urlencode

    body = urlencode(fields)
    start, cpu = time.perf_counter(), time.process_time()
    response = client.post(
        "/cmi/callback/", data=body, content_type="application/x-www-form-urlencoded"
    )
    elapsed = (time.perf_counter() - start) * 1000
    cpu_used = (time.process_time() - cpu) * 1000
    if response.content != b"ACTION=POSTAUTH":
        sys.exit(f"callback answered {response.content!r}")
    return elapsed, cpu_used


def measure(callbacks: list[dict[str, str]]) -> dict[str, list[tuple[float, float]]]:
    from django.test import Client, override_settings

    from tests.adapters.tasksettings import DATABASE_TASKS, IMMEDIATE_TASKS

    modes = {"immediate": IMMEDIATE_TASKS, "database": DATABASE_TASKS}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    client = Client()
    for index, fields in enumerate(callbacks):
        name = ("immediate", "database")[index % 2]
        with override_settings(TASKS=modes[name]):
            times[name].append(post(client, fields))
    return times


def queries(callbacks: list[dict[str, str]]) -> dict[str, int]:
    """The SQL statements of one callback in each mode."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from tests.adapters.tasksettings import DATABASE_TASKS, IMMEDIATE_TASKS

    counts = {}
    for (name, tasks), fields in zip(
        (("immediate", IMMEDIATE_TASKS), ("database", DATABASE_TASKS)), callbacks, strict=True
    ):
        with override_settings(TASKS=tasks), CaptureQueriesContext(connection) as captured:
            post(Client(), fields)
        counts[name] = len(captured.captured_queries)
    return counts


def check(answered: int) -> None:
    """Exactly once, then the worker: every queued e-mail sent, none twice."""
    from cmi_django.models import Payment
    from django.core import mail
    from django.test import override_settings
    from oscar.core.loading import get_model

    from tests.adapters.tasks_support import run_worker, task_rows
    from tests.adapters.tasksettings import DATABASE_TASKS

    captured = Payment.objects.filter(state="captured").count()
    orders = get_model("order", "Order").objects.count()
    debits = get_model("payment", "Transaction").objects.filter(txn_type="Debit").count()
    sent_in_request = len(mail.outbox)
    queued = len(task_rows("cmi_oscar.tasks.send_confirmation"))
    with override_settings(TASKS=DATABASE_TASKS):
        run_worker()
    print(
        f"effects: {answered} callbacks answered ACTION=POSTAUTH, {captured} payments "
        f"captured, {orders} orders, {debits} debits; e-mails: {sent_in_request} sent in "
        f"the request, {queued} queued, {len(mail.outbox)} sent after the worker ran"
    )
    if not answered == captured == orders == debits == len(mail.outbox):
        sys.exit("effects do not match: not exactly once")
    if sent_in_request + queued != answered:
        sys.exit("an e-mail was neither sent nor queued")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=300)
    args = parser.parse_args()

    from tests.pgserver import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    server.start()
    try:
        os.environ.update(
            {
                "CMI_TEST_DATABASE": "postgres",
                "CMI_TEST_POSTGRES_DSN": server.dsn,
                "DJANGO_SETTINGS_MODULE": SETTINGS,
            }
        )
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import setup_test_environment

        from benchmarks.bench_oscar_callback import prepare

        setup_test_environment()  # the locmem e-mail outbox
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        print(f"database {name} on PostgreSQL {bindir.parent.name}; preparing payments...")
        callbacks = prepare(args.callbacks + 12)
        warm, counted, timed = callbacks[:10], callbacks[10:12], callbacks[12:]
        measure(warm)  # imports, templates, connections
        times = measure(timed)
        counts = queries(counted)
        print(f"{len(timed)} callbacks from one client, alternating (milliseconds):")
        p50 = {}
        for mode, pairs in times.items():
            wall, cpu = [w for w, _ in pairs], [c for _, c in pairs]
            p50[mode] = statistics.median(wall), statistics.median(cpu)
            print(
                f"{mode:<10} n={len(wall):<4} wall p50 {p50[mode][0]:6.2f} mean "
                f"{statistics.fmean(wall):6.2f} p90 {statistics.quantiles(wall, n=10)[-1]:6.2f}"
                f" | CPU p50 {p50[mode][1]:6.2f} | queries {counts[mode]}"
            )
        wall_saved = p50["immediate"][0] - p50["database"][0]
        cpu_saved = p50["immediate"][1] - p50["database"][1]
        print(
            f"p50 difference (what CMI no longer waits for): wall {wall_saved:.2f} ms "
            f"({p50['database'][0] / p50['immediate'][0]:.2f}x), CPU {cpu_saved:.2f} ms "
            f"({p50['database'][1] / p50['immediate'][1]:.2f}x)"
        )
        check(len(callbacks))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
