"""Staff payment lists at 10k, 100k and 1M payments: render time, statements, query plans.

    .venv/bin/python benchmarks/bench_staff_lists.py [--sizes 10000,100000,1000000]
        [--sqlite-sizes 10000,100000] [--rounds 7]
        [--lists admin,oscar,wagtail,callbacks,operations] [--list-limit 10000]
        [--against REF]

Issue 16, goal 4: page 1 <= 25 ms and any page <= 50 ms at 100k payments, growing no
faster than logarithmically to 1M, with no statement that reads every payment.

Starts a throw-away PostgreSQL (``tests/pgserver.py``); for each list (the Django admin's
``/admin/cmi_django/payment/``, Oscar's dashboard list, Wagtail's payments viewset) a
worker process with that adapter's test settings creates its database, then, for each
size in turn, tops the payments table up with ``COPY`` (newest last, one a minute),
``VACUUM ANALYZE``s it (what autovacuum does to a live table), and renders the list's
pages in-process through Django's test client as a logged-in superuser:

- page 1, the deepest page the list offers (``CMI_STAFF_LIST_LIMIT``: 10,000 payments),
  and filtered views (state, order number, Wagtail's "Page" filter on the busiest page and
  on a small one, the admin's platform filter).

The Django admin's callbacks and operations lists (``callbacks``, ``operations``) are
measured the same way over 10k, 100k and 1M logged callbacks or operations (PostgreSQL
only), with their filters (outcome; kind).

Each round renders every view once, in turn (alternating rounds: this VM's speed
drifts), each round starting at the next view (so that no view is always the first
after a pause, with cold caches); the figure is the median of the rounds, with the
fastest and slowest, and the median CPU time of the rendering process
(``time.process_time``: what the render costs this process, steadier than the wall
clock on a shared machine, the database's own time apart: "db ms"). One more render per
view, captured, gives its statements (all, and those reading payments) and,
through ``EXPLAIN (ANALYZE)``, their database time, the plan of the page query (the
statement that reads the listed rows) and the most payment rows any one statement read
(what must not grow with the table). The same on SQLite
(a file) at ``--sqlite-sizes``. Payments are spread as a shop's are: Oscar's all
``oscar`` with distinct order numbers; Wagtail's over 20 payment pages, half on one;
the admin's a third per platform. Needs PostgreSQL's server binaries.

``--against REF`` measures a change: each list is rendered by the code of git ``REF``
("before", its tree from ``git archive`` first on the worker's path) and by this tree
("after"), each worker with its own database filled the same way, their rounds taken in
turn (the order swapped each round), so that both see the same moments of a shared
machine; the summary adds after / before for page 1 and the baseline.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "admin": "tests.adapters.django.settings",
    "oscar": "tests.adapters.oscar.settings",
    "wagtail": "tests.adapters.wagtail.settings",
    # The Django admin's two other lists, over their own tables.
    "callbacks": "tests.adapters.django.settings",
    "operations": "tests.adapters.django.settings",
}
#: The table each list reads (the one that grows to a million rows).
TABLES = {
    "callbacks": "cmi_django_callbacklog",
    "operations": "cmi_django_operation",
}
PAYMENTS = "cmi_django_payment"
PAGES = 20
#: The same admin's list of something else, rendered in the same rounds: what a list
#: costs on this machine at the moment with no payment involved (the users list of the
#: Django and Wagtail admins, Oscar's order list).
BASELINE = "baseline (no pay.)"
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
STATES = ["captured"] * 14 + ["declined"] * 3 + ["redirected"] * 2 + ["authorised"]


# -- the worker: one list, one database ------------------------------------------------------


def _rows(start: int, stop: int, platform: str, page_ids: list[int]) -> Iterator[tuple[Any, ...]]:
    """Payments ``start`` to ``stop`` (newest last), as the columns of :data:`COLUMNS`."""
    platforms = ("oscar", "wagtail", "saleor")
    for index in range(start, stop):
        kind = platforms[index % 3] if platform == "admin" else platform
        created = EPOCH + datetime.timedelta(minutes=index)
        state = STATES[index % len(STATES)]
        if kind == "wagtail" and page_ids:
            # Half on the first page, the rest spread over the others.
            page = page_ids[0] if index % 2 else page_ids[1 + index % (len(page_ids) - 1)]
            reference = str(page)
            data = {"page_id": page, "page_title": f"Page {page}", "shopper": {"name": "Payer"}}
        else:
            reference = str(100000 + index)
            data = {}
        captured = Decimal("250.00") if state == "captured" else Decimal(0)
        yield (
            f"B{index:010d}", kind, reference, f"{kind}:1", Decimal("250.00"), "504", "auto",
            "fr", f"payer{index}@example.ma", state, captured, captured, Decimal(0), 0, "",
            f"T{index}", "", "", "4000 00** **** 0002", "VISA", "00", "",
            json.dumps(data), "{}", created, created,
        )  # fmt: skip


CALLBACK_COLUMNS = (
    "oid, kind, fields, verified, outcome, reply, error, remote_addr, reading, created_at"
)
OPERATION_COLUMNS = (
    'payment_id, kind, amount, state, succeeded, key, response, error, "user", created_at'
)
OUTCOMES = ["approved"] * 14 + ["declined"] * 3 + ["refused_hash"] * 2 + ["duplicate"]
OPERATION_KINDS = ["capture"] * 12 + ["status"] * 5 + ["refund"] * 2 + ["void"]


def _log_rows(start: int, stop: int, platform: str, payment_id: int) -> Iterator[tuple[Any, ...]]:
    """Callbacks or operations ``start`` to ``stop`` (newest last), one a minute."""
    for index in range(start, stop):
        created = EPOCH + datetime.timedelta(minutes=index)
        if platform == "callbacks":
            outcome = OUTCOMES[index % len(OUTCOMES)]
            yield (
                f"B{index:010d}", "callback", "{}", outcome != "refused_hash", outcome,
                "ACTION=POSTAUTH", "", "127.0.0.1", "", created,
            )  # fmt: skip
        else:
            kind = OPERATION_KINDS[index % len(OPERATION_KINDS)]
            yield (
                payment_id, kind, Decimal("250.00"), "succeeded", True, None, "{}", "",
                "staff", created,
            )  # fmt: skip


COLUMNS = (
    "oid, platform, reference, config_key, amount, currency, capture_mode, lang, email, "
    "state, authorised_amount, captured_amount, refunded_amount, declined_attempts, "
    "attention_reason, trans_id, auth_code, host_ref_num, masked_pan, card_brand, "
    "proc_return_code, error_code, data, request_fields, created_at, updated_at"
)


def _fill(start: int, stop: int, platform: str, page_ids: list[int]) -> float:
    """Add payments (callbacks, operations) ``start`` to ``stop``; seconds taken (with
    VACUUM ANALYZE)."""
    from django.db import connection, transaction

    began = time.perf_counter()
    if platform in TABLES:
        from cmi_django.models import Payment

        payment = Payment.objects.get_or_create(oid="B-OPERATIONS", defaults={"amount": 250})[0]
        table, columns = TABLES[platform], CALLBACK_COLUMNS
        if platform == "operations":
            columns = OPERATION_COLUMNS
        rows = _log_rows(start, stop, platform, payment.pk)
    else:
        table, columns, rows = PAYMENTS, COLUMNS, _rows(start, stop, platform, page_ids)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_sql = f"COPY {table} ({columns}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")
    elif platform in TABLES:
        sys.exit("the callbacks' and operations' lists are measured on PostgreSQL only")
    else:
        marks = ", ".join(["%s"] * COLUMNS.count(",") + ["%s"])
        insert = f"INSERT INTO cmi_django_payment ({COLUMNS}) VALUES ({marks})"  # noqa: S608
        adapt = connection.ops.adapt_datetimefield_value
        with transaction.atomic(), connection.cursor() as cursor:  # not one per row
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                # SQLite: decimals as text, datetimes as Django stores them.
                values = [str(v) if isinstance(v, Decimal) else v for v in row[:24]]
                batch.append((*values, adapt(row[24]), adapt(row[25])))
                if len(batch) == 10_000:
                    cursor.executemany(insert, batch)
                    batch = []
            if batch:
                cursor.executemany(insert, batch)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return time.perf_counter() - began


def _deepest(rows: int, per_page: int) -> int:
    """The last page a list offers over ``rows`` matches (it counts up to the limit)."""
    try:
        from cmi_django.listing import list_limit
    except ImportError:  # the code before the bounded lists (a before/after run)
        return max(1, -(-rows // per_page))
    return max(1, -(-min(rows, list_limit()) // per_page))


def _views(platform: str, size: int, page_ids: list[int]) -> dict[str, str]:
    """The URLs rendered for ``platform``'s list at ``size`` payments: name -> URL."""
    if platform == "admin":
        base = "/admin/cmi_django/payment/"
        return {
            "page 1": base,
            f"page {_deepest(size, 50)} (deepest)": f"{base}?p={_deepest(size, 50)}",
            "platform=wagtail": base + "?platform=wagtail",
            "platform, deepest": f"{base}?platform=wagtail&p={_deepest(size // 3, 50)}",
            BASELINE: "/admin/auth/user/",
        }
    if platform in TABLES:
        base = f"/admin/cmi_django/{'callbacklog' if platform == 'callbacks' else 'operation'}/"
        deepest = _deepest(size, 100)
        if platform == "callbacks":
            return {
                "page 1": base,
                f"page {deepest} (deepest)": f"{base}?p={deepest}",
                "outcome=declined": base + "?outcome=declined",
                "outcome, deepest": f"{base}?outcome=declined&p={_deepest(size * 3 // 20, 100)}",
                BASELINE: "/admin/auth/user/",
            }
        return {
            "page 1": base,
            f"page {deepest} (deepest)": f"{base}?p={deepest}",
            "kind=refund": base + "?kind__exact=refund",
            BASELINE: "/admin/auth/user/",
        }
    if platform == "oscar":
        from django.urls import reverse

        base = reverse("cmi_oscar_dashboard:cmi-payment-list")
        return {
            "page 1": base,
            f"page {_deepest(size, 25)} (deepest)": f"{base}?page={_deepest(size, 25)}",
            "state=declined": base + "?state=declined",
            "order number": base + "?order_number=100005",
            BASELINE: reverse("dashboard:order-list"),
        }
    base = "/admin/cmi_payments/"
    return {
        "page 1": base,
        f"page {_deepest(size, 20)} (deepest)": f"{base}?p={_deepest(size, 20)}",
        "busiest page": f"{base}?page={page_ids[0]}",
        "busiest, deepest": f"{base}?page={page_ids[0]}&p={_deepest(size // 2, 20)}",
        "small page": f"{base}?page={page_ids[-1]}",
        BASELINE: "/admin/users/",
    }


def _plan(sql: str, table: str = PAYMENTS) -> tuple[str, int, float]:
    """(the plan's top nodes, rows of ``table`` read, execution ms) of ``sql``.

    Rows read: over every scan of ``table`` in the plan, the rows it returned
    plus those its filter removed, times its loops (PostgreSQL's ``EXPLAIN ANALYZE``; -1 on
    SQLite, which does not say).
    """
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return "; ".join(str(row[-1]) for row in cursor.fetchall()), -1, 0.0
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        document = cursor.fetchone()[0]
        document = document if isinstance(document, list) else json.loads(document)
    nodes: list[str] = []
    read = 0

    def walk(node: dict[str, Any], depth: int) -> None:
        nonlocal read
        if node.get("Relation Name") == table:
            rows = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            read += int(rows * node.get("Actual Loops", 1))
        if depth < 3:
            name = node["Node Type"]
            if node.get("Index Name"):
                name += f" {node['Index Name']}"
            nodes.append(name)
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(document[0]["Plan"], 0)
    return " > ".join(nodes), read, float(document[0]["Execution Time"])


def _get(client: Any, url: str) -> None:
    status = client.get(url).status_code
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")


def _take_turn() -> None:
    """``--against``: wait until the driver says this worker's round may start (the
    other code's worker renders its round in between)."""
    print("turn", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("the driver stopped")


def _measure(
    client: Any, views: dict[str, str], rounds: int, table: str = PAYMENTS
) -> dict[str, dict[str, Any]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for url in views.values():  # warm up: templates, the first page of each
        _get(client, url)
    times: dict[str, list[float]] = {name: [] for name in views}
    cpu: dict[str, list[float]] = {name: [] for name in views}
    alternating = bool(os.environ.get("CMI_BENCH_AB"))
    order = list(views.items())
    for number in range(rounds):
        if alternating:
            _take_turn()
        # Each round starts at the next view: the first render after a pause (the other
        # worker's round, with --against) meets cold caches, and would always be page 1's.
        shift = number % len(order)
        for name, url in order[shift:] + order[:shift]:
            began, began_cpu = time.perf_counter(), time.process_time()
            _get(client, url)
            times[name].append((time.perf_counter() - began) * 1000)
            cpu[name].append((time.process_time() - began_cpu) * 1000)
    figures = {}
    for name, url in views.items():
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        statements = [q["sql"] for q in captured.captured_queries]
        payments = [sql for sql in statements if table in sql]
        plans = [_plan(sql, table) for sql in payments]
        # The page query: the one that reads the listed rows (ordered, not the choices' walk).
        page = [
            plan
            for sql, plan in zip(payments, plans, strict=True)
            if "ORDER BY" in sql and not sql.lstrip().startswith("WITH")
        ]
        figures[name] = {
            "median": statistics.median(times[name]),
            "cpu": statistics.median(cpu[name]),
            "min": min(times[name]),
            "max": max(times[name]),
            "queries": len(statements),
            "payment_queries": len(payments),
            "plan": page[-1][0] if page else "-",
            "read": max((p[1] for p in plans), default=0),
            "db_ms": sum(p[2] for p in plans),
        }
    return figures


def worker(platform: str, sizes: list[int], rounds: int) -> None:
    """Run in the worker process (``--worker``): print one JSON line per size."""
    import django
    from django.conf import settings

    folder = os.environ.get("CMI_BENCH_SQLITE")
    side = os.environ.get("CMI_BENCH_AB", "")  # --against: each code its own database
    if folder:  # a file, as a site runs SQLite, not the tests' in-memory database
        name = str(Path(folder) / f"{platform}{side}.db")
        settings.DATABASES["default"]["TEST"] = {"NAME": name}
    elif side:
        settings.DATABASES["default"]["TEST"] = {"NAME": f"test_bench_{platform}_{side}"}
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    # Not setup_test_environment(): its instrumented template rendering would be measured.
    settings.ALLOWED_HOSTS = ["*"]
    if os.environ.get("CMI_BENCH_LIST_LIMIT"):  # --list-limit
        settings.CMI_STAFF_LIST_LIMIT = int(os.environ["CMI_BENCH_LIST_LIMIT"])
    name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    page_ids: list[int] = []
    if platform == "wagtail":
        from cmi_wagtail.models import PaymentPage
        from wagtail.models import Page

        root = Page.objects.get(depth=1)
        for number in range(PAGES):
            page = PaymentPage(title=f"Page {number}", slug=f"page-{number}", fixed_amount=250)
            root.add_child(instance=page)
            page_ids.append(page.pk)
    user = get_user_model().objects.create_superuser("bench", "bench@example.ma", "pw")
    client = Client()
    client.force_login(user)
    filled = 0
    for size in sizes:
        seconds = _fill(filled, size, platform, page_ids)
        filled = size
        table = TABLES.get(platform, PAYMENTS)
        figures = _measure(client, _views(platform, size, page_ids), rounds, table)
        print(json.dumps({"size": size, "fill_s": seconds, "views": figures}), flush=True)
    connection.creation.destroy_test_db(name, verbosity=0)


# -- the driver -------------------------------------------------------------------------------


def _run(
    platform: str, sizes: list[int], rounds: int, env: dict[str, str]
) -> Iterator[dict[str, Any]]:
    command = [sys.executable, __file__, "--worker", platform, "--rounds", str(rounds)]
    command += ["--sizes", ",".join(map(str, sizes))]
    path = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)]))
    env = {**env, "DJANGO_SETTINGS_MODULE": SETTINGS[platform], "PYTHONPATH": path}
    with subprocess.Popen(  # noqa: S603 - our own command line
        command, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as p:
        for line in p.stdout or ():
            if line.startswith("{"):
                yield json.loads(line)
            else:
                print(line, end="")
    if p.returncode:
        sys.exit(f"the {platform} worker failed ({p.returncode})")


def _run_against(
    platform: str, sizes: list[int], rounds: int, env: dict[str, str], other: Path
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``--against``: the list as the code in ``other`` renders it (before) and as this
    tree's does (after), each in its own worker and database, round after round in turn
    (the order swapped every round): both see the same moments of a shared machine."""
    command = [sys.executable, __file__, "--worker", platform, "--rounds", str(rounds)]
    command += ["--sizes", ",".join(map(str, sizes))]
    workers: dict[str, subprocess.Popen[str]] = {}
    for side, roots in (("before", [other, other / "adapters"]), ("after", [])):
        path = os.pathsep.join(filter(None, [*map(str, roots), env.get("PYTHONPATH"), str(ROOT)]))
        side_env = {**env, "DJANGO_SETTINGS_MODULE": SETTINGS[platform], "PYTHONPATH": path}
        workers[side] = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            env={**side_env, "CMI_BENCH_AB": side},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def next_turn(side: str) -> dict[str, Any] | None:
        """None when ``side``'s worker waits for its next round, its figures when done."""
        for line in workers[side].stdout or ():
            if line.strip() == "turn":
                return None
            if line.startswith("{"):
                return dict(json.loads(line))
            print(line, end="")
        sys.exit(f"the {platform} worker ({side}) failed ({workers[side].wait()})")

    try:
        for _size in sizes:
            for side in workers:  # both filled and warmed up
                next_turn(side)
            results: dict[str, dict[str, Any]] = {}
            order = list(workers)
            while len(results) < len(workers):
                for side in order:
                    stdin = workers[side].stdin
                    if side in results or stdin is None:
                        continue
                    stdin.write("go\n")
                    stdin.flush()
                    figures = next_turn(side)
                    if figures is not None:
                        results[side] = figures
                order.reverse()
            yield results["before"], results["after"]
    finally:
        for worker_process in workers.values():
            if worker_process.stdin:
                worker_process.stdin.close()
            worker_process.wait()


def _checkout(ref: str, folder: Path) -> Path:
    """The tree of git ``ref`` (``git archive``), to run the lists as they were."""
    archive = subprocess.run(  # noqa: S603 - our own command line
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],  # noqa: S607 - git on PATH
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _report(database: str, platform: str, result: dict[str, Any]) -> None:
    size, fill = result["size"], result["fill_s"]
    rows = {"callbacks": "callbacks", "operations": "operations"}.get(platform, "payments")
    print(f"\n{platform} list, {database}, {size:,} {rows} (added in {fill:.1f} s)")
    heads = f"{'median ms':>10}{'(min-max)':>16}{'cpu ms':>7}{'stmts':>7}{'on tbl':>8}{'db ms':>7}"
    print(f"  {'view':<20}{heads}{'max read':>10}  page query plan")
    for name, f in result["views"].items():
        spread = f"({f['min']:.1f}-{f['max']:.1f})"
        read = "-" if f["read"] < 0 else f"{f['read']:,}"
        print(
            f"  {name:<20}{f['median']:>10.1f}{spread:>16}{f['cpu']:>7.1f}{f['queries']:>7}"
            f"{f['payment_queries']:>8}{f['db_ms']:>7.2f}{read:>10}  {f['plan']}"
        )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--sqlite-sizes", default="10000,100000", help="empty: no SQLite")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per size")
    parser.add_argument("--lists", default="admin,oscar,wagtail,callbacks,operations")
    parser.add_argument(
        "--list-limit", type=int, help="CMI_STAFF_LIST_LIMIT for the lists (default: 10,000)"
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="also render each list with the code of git REF, rounds alternating "
        "(before: REF, after: this tree)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.worker:
        worker(args.worker, sizes, args.rounds)
        return
    if args.list_limit:  # read by the workers (their settings), as their environment's
        os.environ["CMI_BENCH_LIST_LIMIT"] = str(args.list_limit)
    sys.path.insert(0, str(ROOT))
    from tests.pgserver import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql)")
    with tempfile.TemporaryDirectory(prefix="cmi-bench-before-") as before:
        other = _checkout(args.against, Path(before)) if args.against else None

        def runs(
            platform: str, sizes: list[int], env: dict[str, str]
        ) -> Iterator[tuple[str, dict[str, Any]]]:
            if other is None:
                for result in _run(platform, sizes, args.rounds, env):
                    yield platform, result
                return
            for old, new in _run_against(platform, sizes, args.rounds, env, other):
                yield f"{platform} before", old
                yield f"{platform} after", new

        server = PostgresServer(bindir)
        server.start()
        print(f"PostgreSQL {bindir.parent.name}, {os.cpu_count()} CPUs; {args.rounds} rounds")
        results: list[tuple[str, str, dict[str, Any]]] = []
        try:
            env = {
                **os.environ,
                "CMI_TEST_DATABASE": "postgres",
                "CMI_TEST_POSTGRES_DSN": server.dsn,
            }
            for platform in args.lists.split(","):
                for name, result in runs(platform, sizes, env):
                    _report("PostgreSQL", name, result)
                    results.append(("PostgreSQL", name, result))
        finally:
            server.stop()
        sqlite_sizes = [int(s) for s in args.sqlite_sizes.split(",") if s]
        if sqlite_sizes:
            with tempfile.TemporaryDirectory(prefix="cmi-bench-") as folder:
                env = {**os.environ, "CMI_TEST_DATABASE": "sqlite", "CMI_BENCH_SQLITE": folder}
                for platform in args.lists.split(","):
                    if platform in TABLES:  # PostgreSQL only
                        continue
                    for name, result in runs(platform, sqlite_sizes, env):
                        _report("SQLite", name, result)
                        results.append(("SQLite", name, result))
    _summary(results)


def _summary(results: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Page 1 and the slowest page per list and size, and page 1 against the baseline (the
    same admin's list of something else, in the same rounds: steadier than either figure
    alone on a shared machine)."""
    print(
        "\nsummary (median ms, wall clock and this process's CPU): page 1, the slowest view, "
        "most rows one statement read"
    )
    for database, platform, result in results:
        views = result["views"]
        first = views["page 1"]["median"]
        payment_views = {k: v for k, v in views.items() if k != BASELINE}
        slowest_name, slowest = max(payment_views.items(), key=lambda item: item[1]["median"])
        baseline = views[BASELINE]["median"]
        read = max(v["read"] for v in payment_views.values())
        cpu = views["page 1"]["cpu"]
        print(
            f"  {database:<11}{platform:<11}{result['size']:>10,}  page 1 {first:6.1f} "
            f"(cpu {cpu:5.1f})  slowest {slowest['median']:6.1f} (cpu {slowest['cpu']:5.1f}, "
            f"{slowest_name})  baseline {baseline:5.1f} (cpu {views[BASELINE]['cpu']:5.1f})"
            f"  page 1 / baseline {first / baseline:.2f} (cpu {cpu / views[BASELINE]['cpu']:.2f})"
            + (f"  rows read {read:,}" if read >= 0 else "")
        )
    by_run = {(base, name, result["size"]): result["views"] for base, name, result in results}
    for (database, name, size), views in by_run.items():
        old = by_run.get((database, name.replace(" after", " before"), size))
        if not name.endswith(" after") or old is None:
            continue
        line = f"  {database:<11}{name.removesuffix(' after'):<11}{size:>10,}  after / before:"
        for view in ("page 1", BASELINE):
            wall = views[view]["median"] / old[view]["median"]
            line += f"  {view} {wall:.2f} (cpu {views[view]['cpu'] / old[view]['cpu']:.2f})"
        print(line)


if __name__ == "__main__":
    main()
