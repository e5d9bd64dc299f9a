"""The Saleor app under gunicorn with 32 concurrent clients, against a trivial view.

    .venv/bin/python benchmarks/bench_saleor.py [--requests 4000] [--rounds 4]
        [--clients 32] [--workers 4] [--threads 2] [--worker-class gthread|sync]
        [--worker-connections N] [--single 200] [--paths trivial,webhook,callback,duplicate]
        [--postgres]

The database is SQLite in a temporary file, or PostgreSQL with
``CMI_BENCH_POSTGRES_DSN=postgresql://...`` (the benchmark creates and drops its own
database there), or a throw-away PostgreSQL with ``--postgres`` (``tests/pgserver.py``).
The app is served by gunicorn (gthread workers, persistent database connections) on
loopback; the clients are keep-alive connections on one event loop of this process
(``benchmarks/serving.py``: light enough that the server, not the clients, sets the pace).
Each worker accepts at most its share of the connections (``serving.connections``).
Paths, all on the same server
and database, measured in ``--rounds`` alternating rounds (this VM's speed drifts; each
round's ratio compares two neighbouring measurements):

- ``trivial``: a view answering ``ok`` (the server's own cost);
- ``webhook``: PAYMENT_GATEWAY_INITIALIZE_SESSION, signed like Saleor signs it: installation
  lookup, detached JWS RS256 verification, recipient check, channel lookup, JSON answer;
- ``callback``: CMI's first callback of a distinct payment each time: parse, verify the
  ver3 hash, lock the row, decide (capture), report ``CHARGE_SUCCESS`` to Saleor with
  ``transactionEventReport``, then write the callback log and answer ``ACTION=POSTAUTH``.
  Saleor's GraphQL endpoint is a stand-in here: a small threaded HTTP/1.1 server in its
  own process that answers the mutation at once (keep-alive: each gunicorn thread reuses
  its connection, as the app does with Saleor), so Saleor's own latency is left out; it
  shares the machine's CPUs;
- ``duplicate``: the same callback of an already captured payment, again and again
  (verified, row locked, decided DUPLICATE, logged; no report).

Prints requests/s, p50/p99 latency and errors over all rounds, the median and range of
the rounds' ratios of each path's throughput to the trivial view's (issue 5's goal: ratio
>= 0.5, p99 < 50 ms), one client's latencies, and checks the callbacks' effects: one
capture and one Saleor report per callback.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from benchmarks.serving import Load

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "adapters")]

_wsgi: Any = None
_WSGI_LOCK = threading.Lock()


def configure() -> None:
    """Settings from the environment (the same in this process and in gunicorn's)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    dsn = os.environ.get("CMI_BENCH_POSTGRES_DSN")
    if dsn:
        os.environ["CMI_TEST_DATABASE"] = "postgres"
        os.environ["CMI_TEST_POSTGRES_DSN"] = dsn
        from tests.adapters.dbsettings import database_settings

        databases = database_settings()
        databases["default"]["CONN_MAX_AGE"] = 300
    else:
        databases = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ["CMI_BENCH_SQLITE"],
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
                "CONN_MAX_AGE": 300,
            }
        }
    settings.configure(
        SECRET_KEY="bench",  # noqa: S106 - a throw-away benchmark database
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "cmi_django",
            "cmi_saleor",
        ],
        ROOT_URLCONF="benchmarks.bench_saleor",
        DATABASES=databases,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CMI_PAYMENTS={},
        CMI_SALEOR_APP_URL="http://127.0.0.1:8000",
        LOGGING_CONFIG=None,
    )
    django.setup()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI application gunicorn serves (built on the first request of each worker)."""
    global _wsgi  # noqa: PLW0603 - one application per worker process
    with _WSGI_LOCK:  # gthread: the first requests of a worker arrive together
        if _wsgi is None:
            configure()
            from django.core.wsgi import get_wsgi_application

            _wsgi = get_wsgi_application()
    return _wsgi(environ, start_response)  # type: ignore[no-any-return]


def trivial(request: object) -> object:
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


def __getattr__(name: str) -> Any:
    """``urlpatterns`` on demand: this module is the served URLconf, read after setup."""
    if name == "urlpatterns":
        from django.urls import include, path

        return [path("trivial", trivial), path("", include("cmi_saleor.urls"))]
    raise AttributeError(name)


# -- Saleor's GraphQL endpoint, a fast stand-in ---------------------------------------------


def standin(port_out: Any, reports: Any, jwks: dict[str, Any]) -> None:
    """Answer ``transactionEventReport`` (recorded) and the JWKS; count the reports."""
    events = itertools.count(1)
    jwks_body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Saleor's own server

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # Headers and body are two writes: without this, the body waits for the
            # app's delayed ACK (40 ms) on a kept-alive connection.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(jwks_body)

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if "transactionEventReport" not in request.get("query", ""):
                self.send_error(400)
                return
            with reports.get_lock():
                reports.value += 1
            answer = {"alreadyProcessed": False, "transactionEvent": {"id": f"E{next(events)}"}}
            self._send(
                json.dumps({"data": {"transactionEventReport": {**answer, "errors": []}}}).encode()
            )

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    port_out.value = server.server_address[1]
    server.serve_forever()


# -- data -----------------------------------------------------------------------------------


def setup_data(api_url: str, fresh: int) -> dict[str, Any]:
    """An installation and channel; a captured payment; ``fresh`` payments awaiting CMI."""
    from cmi_django import services
    from cmi_saleor.hooks import silenced
    from cmi_saleor.models import ChannelConfiguration, SaleorInstallation, TransactionMap
    from django.core.management import call_command

    from cmi_core.sandbox import DEFAULT_MERCHANT
    from cmi_core.testing import make_callback
    from tests.adapters.saleor.standin import FakeSaleor, checkout, recipient

    call_command("migrate", verbosity=0)
    saleor = FakeSaleor(api_url=api_url)
    installation = SaleorInstallation.objects.create(
        saleor_api_url=saleor.api_url, app_id=saleor.app_id, token=saleor.token, jwks=saleor.jwks()
    )
    channel = ChannelConfiguration.objects.create(
        installation=installation,
        channel="default-channel",
        client_id=DEFAULT_MERCHANT.client_id,
        store_key=DEFAULT_MERCHANT.store_key,
    )

    def payment(index: int) -> dict[str, str]:
        transaction_id = f"VHJhbnNhY3Rpb25JdGVtOj{index:06d}"
        created, request = services.create_payment(
            platform="saleor",
            reference=transaction_id,
            order={
                "amount": Decimal("120.50"),
                "email": "amina@example.ma",
                "billing_name": "Amina Test",
                "ok_url": "http://127.0.0.1:8000/cmi/ok",
                "fail_url": "http://127.0.0.1:8000/cmi/fail",
                "callback_url": "http://127.0.0.1:8000/cmi/callback",
            },
            config_key=channel.config_key,
        )
        TransactionMap.objects.create(
            oid=created.oid,
            payment=created,
            installation=installation,
            saleor_api_url=saleor.api_url,
            channel=channel.channel,
            transaction_id=transaction_id,
            return_url="https://shop.example.ma/return",
        )
        return make_callback(
            DEFAULT_MERCHANT.store_key,
            oid=created.oid,
            amount=created.amount,
            trans_id=f"T{index:08d}",
            request_fields=request.as_dict(),
        )

    duplicate = payment(0)
    with silenced():  # its first delivery, done here
        outcome = services.handle_callback(duplicate)
    if outcome.reply != "ACTION=POSTAUTH":
        raise SystemExit(f"setup failed: {outcome}")
    body = json.dumps(
        {
            "recipient": recipient(saleor.app_id),
            "data": None,
            "amount": 120.5,
            "sourceObject": checkout(),
        }
    ).encode()
    headers = saleor.headers("PAYMENT_GATEWAY_INITIALIZE_SESSION", body)
    return {
        "jwks": saleor.jwks(),
        "webhook": (body, {**headers, "Content-Type": "application/json"}),
        "duplicate": urlencode(duplicate).encode(),
        "fresh": [urlencode(payment(i)).encode() for i in range(1, fresh + 1)],
    }


# -- driving the server ---------------------------------------------------------------------


def load(
    url: str,
    bodies: Callable[[], bytes | None],
    headers: dict[str, str],
    expect: bytes,
    *,
    total: int,
    clients: int,
) -> Load:
    """``total`` POSTs from ``clients`` keep-alive connections.

    ``bodies()`` gives each request's body (None: an empty one).
    """
    from benchmarks.serving import hammer

    left = iter(range(total))

    def next_body() -> bytes | None:
        if next(left, None) is None:
            return None
        body = bodies()
        return b"" if body is None else body

    return hammer(url, next_body, expect=expect, clients=clients, headers=headers)


def serve(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn serving this module's application; (process, base URL)."""
    from benchmarks.serving import free_port, gunicorn, wait_for

    port = free_port()
    server = gunicorn(args, "benchmarks.bench_saleor:application", port)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/trivial")
    return server, base


PATHS = ("trivial", "webhook", "callback", "duplicate")


def measure(
    args: argparse.Namespace, base: str, data: dict[str, Any]
) -> tuple[dict[str, list[Load]], dict[str, Load]]:
    """Every path with ``args.clients`` clients in alternating rounds, then with one client."""
    fresh: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in data["fresh"]:
        fresh.put(body)
    webhook_body, webhook_headers = data["webhook"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    paths: dict[str, tuple[str, Callable[[], bytes | None], dict[str, str], bytes]] = {
        "trivial": (f"{base}/trivial", lambda: None, {}, b"ok"),
        "webhook": (
            f"{base}/api/webhooks/payment-gateway-initialize-session",
            lambda: webhook_body,
            webhook_headers,
            b'{"data"',
        ),
        "callback": (f"{base}/cmi/callback", fresh.get_nowait, form, b"ACTION=POSTAUTH"),
        "duplicate": (
            f"{base}/cmi/callback",
            lambda: data["duplicate"],
            form,
            b"ACTION=POSTAUTH",
        ),
    }
    chosen = {name: paths[name] for name in args.paths}
    # Warm every worker (imports, connections, caches) on the repeatable paths.
    for name in ("trivial", "webhook", "duplicate"):
        if name in chosen:
            url, bodies, headers, expect = paths[name]
            load(url, bodies, headers, expect, total=400, clients=args.clients)
    results: dict[str, list[Load]] = {name: [] for name in chosen}
    for _ in range(args.rounds):
        for name, (url, bodies, headers, expect) in chosen.items():
            results[name].append(
                load(
                    url,
                    bodies,
                    headers,
                    expect,
                    total=args.requests // args.rounds,
                    clients=args.clients,
                )
            )
    single: dict[str, Load] = {}
    for name, (url, bodies, headers, expect) in chosen.items():
        single[name] = load(url, bodies, headers, expect, total=args.single, clients=1)
    return results, single


def report(
    args: argparse.Namespace,
    db: str,
    results: dict[str, list[Load]],
    single: dict[str, Load],
    effects: str,
) -> None:
    from benchmarks.serving import Load, describe

    print(
        f"{args.requests} requests per path in {args.rounds} alternating rounds, "
        f"{args.clients} concurrent clients, {db}, {describe(args)}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'path':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}"
        f"{'(rounds)':>18}{'errors':>8}"
    )
    for name, runs in results.items():
        run = Load.merged(runs)
        # Each round against the trivial round just before it: this VM's speed drifts, and a
        # drift then changes both sides alike.
        ratios = [r.rate / t.rate for r, t in zip(runs, results["trivial"], strict=True)]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(
            f"{name:<10}{run.rate:>10.0f}{run.percentile(50):>10.1f}{run.percentile(99):>10.1f}"
            f"{statistics.median(ratios):>8.2f}{spread:>18}{run.errors:>8}"
        )
    print("req/s and percentiles: all rounds together; ratio: the median of the rounds'")
    print(f"one client, {args.single} requests each:")
    for name, run in single.items():
        print(
            f"{name:<10} p50 {run.percentile(50):6.2f} ms  mean "
            f"{statistics.fmean(run.latencies) * 1000:6.2f} ms  p99 {run.percentile(99):6.2f} ms"
            f"  errors {run.errors}"
        )
    print(effects)


def start_standin() -> tuple[multiprocessing.Process, str, Any]:
    """Saleor's stand-in in a child process; (process, GraphQL URL, report counter)."""
    from tests.adapters.saleor.standin import FakeSaleor

    context = multiprocessing.get_context("fork")
    port_out, reports = context.Value("i", 0), context.Value("i", 0)
    process = context.Process(
        target=standin, args=(port_out, reports, FakeSaleor().jwks()), daemon=True
    )
    process.start()
    while not port_out.value:
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_out.value}/graphql/", reports


def _database(admin_dsn: str | None, drop: bool = False) -> None:
    """Create (or drop) the benchmark's own database on ``admin_dsn``'s server."""
    if not admin_dsn:
        return
    import psycopg

    name = f"cmi_bench_saleor_{os.getpid()}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        if not drop:
            conn.execute(f"CREATE DATABASE {name}")
    if not drop:
        os.environ["CMI_BENCH_POSTGRES_DSN"] = admin_dsn.rsplit("/", 1)[0] + f"/{name}"


def _start_postgres() -> Any:
    """A throw-away PostgreSQL (``tests/pgserver.py``); sets ``CMI_BENCH_POSTGRES_DSN``."""
    from tests.pgserver import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    os.environ["CMI_BENCH_POSTGRES_DSN"] = server.start()
    return server


def arguments() -> argparse.Namespace:
    from benchmarks.serving import add_server_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per path")
    add_server_arguments(parser)
    parser.add_argument("--single", type=int, default=200, help="requests from one client")
    parser.add_argument("--postgres", action="store_true", help="start a throw-away server")
    parser.add_argument(
        "--paths",
        type=lambda text: [p for p in PATHS if p in text.split(",")],
        default=list(PATHS),
        help=f"some of {','.join(PATHS)} (trivial is always measured)",
    )
    args = parser.parse_args()
    if "trivial" not in args.paths:
        args.paths.insert(0, "trivial")
    return args


def main() -> None:
    args = arguments()
    pg = _start_postgres() if args.postgres else None
    admin_dsn = os.environ.get("CMI_BENCH_POSTGRES_DSN")
    tmp = tempfile.TemporaryDirectory()
    gunicorn = stand_in = None
    try:
        _database(admin_dsn)  # a database of our own on that server
        if not admin_dsn:
            os.environ["CMI_BENCH_SQLITE"] = str(Path(tmp.name) / "bench.sqlite3")
        configure()

        stand_in, api_url, reports = start_standin()
        fresh_count = args.requests + args.single if "callback" in args.paths else 0
        print(f"preparing {fresh_count} payments...", flush=True)
        data = setup_data(api_url, fresh_count)
        from django.db import connections

        connections.close_all()

        gunicorn, base = serve(args)
        results, single = measure(args, base, data)
        effects = "effects: callbacks not measured"
        if "callback" in results:
            errors = sum(run.errors for run in results["callback"]) + single["callback"].errors
            answered = args.requests // args.rounds * args.rounds + args.single - errors
            effects = check(answered, reports.value)
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        if stand_in is not None:
            stand_in.terminate()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001,S110 - settings may never have been configured
            pass
        _database(admin_dsn, drop=True)
        if pg is not None:
            pg.stop()
        tmp.cleanup()

    report(args, "PostgreSQL" if admin_dsn else "SQLite", results, single, effects)


def check(answered: int, reports: int) -> str:
    """Exactly once: each answered first callback captured one payment and sent one report."""
    from cmi_django.models import CallbackLog, Payment

    captured = Payment.objects.filter(state="captured").count() - 1  # less the duplicate's
    logged = CallbackLog.objects.filter(kind="callback", outcome="capture").count() - 1
    line = (
        f"effects: {answered} first callbacks answered ACTION=POSTAUTH, {captured} payments "
        f"captured, {logged} capture logs, {reports} CHARGE_SUCCESS reports to the stand-in"
    )
    if not answered == captured == logged == reports:
        sys.exit(f"{line}\neffects do not match: not exactly once")
    return line


if __name__ == "__main__":
    main()
