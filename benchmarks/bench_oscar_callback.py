"""CMI's callback against Oscar placing the same order itself, on a real server.

    .venv/bin/python benchmarks/bench_oscar_callback.py [--concurrency 1,4,32] [--rounds 3]
        [--per-round 150] [--in-process 20] [--profile N] [--workers 4] [--threads 2]
        [--worker-class gthread|sync] [--worker-connections N] [--no-email]
        [--tasks immediate|database] [--task-workers 1] [--worker-interval 0.1]
        [--single N]

Starts a throw-away PostgreSQL (``tests/pgserver.py``), creates the Oscar test database
(``tests/adapters/oscar/settings.py``) and prepares, for each request, an order of its own
(one product each: otherwise every order waits on one stock record's row lock):

- **callback**: a payment as Oscar's payment step leaves it (the frozen basket and its
  checkout data) and CMI's valid, signed, approved callback for it; each places the Oscar
  order and captures it (``ACTION=POSTAUTH``);
- **peer**: Oscar's own checkout placing the same order: an open basket with the same
  product and a session holding the guest's e-mail, the same shipping address and free
  shipping; the shopper's "Place order" POST (with its CSRF token) goes to stock Oscar's
  ``PaymentDetailsView`` (preview) with a no-op ``handle_payment``. Oscar submits it,
  places the order, sends the order-placed e-mail and redirects to the thank-you page;
  the bench's URL turns that redirect into a 200 ``placed`` (any other answer, such as a
  redirect back to the basket, is an error).

Both are served by gunicorn (gthread workers, persistent database connections) on
loopback with the same settings, middleware and e-mail backend (a server per client
count, each worker accepting at most its share of that count's connections:
``serving.connections``), and driven in
alternating rounds (callback first, then peer first) at each concurrency from keep-alive
connections (``benchmarks/serving.py``). Prints requests per second, p50/p99 for both, the
ratio callback/peer per concurrency, the server's CPU per request (gunicorn's workers
and PostgreSQL, from ``/proc``), the same requests in this process (mean time and SQL
queries per request, through Django's test client), and checks exactly once:
answered = orders = debits for the callbacks, answered = orders = submitted baskets for
the peer. Oscar's order-placed e-mail is sent on both sides (the callback after its
commit, before the reply); ``--no-email`` turns it off on both. ``--profile N`` prints
cProfile's top N functions of the in-process requests.

``--tasks`` chooses the task backend of the served app (``tests/adapters/tasksettings.py``):
``immediate`` (the default) runs the callback's e-mail task after its commit, in the
request, as Oscar sends its own; ``database`` (production's, ``django-tasks-db``) has the
callback write a task row in its transaction and answer, and the bench runs the worker
(``manage.py db_worker``, ``--task-workers`` processes, 1 by default) on the same machine
during the rounds, so that its CPU weighs on the callback's throughput (its CPU is
charged to the callback). After each callback round the bench waits for the queue to
drain before the next round, so that the peer's rounds never pay for the callback's
e-mails, and prints the tasks left when each round ended, the drain's time and the
callback's rate counting it ("with the drain"). ``--worker-interval`` (0.1 s) is the
worker's sleep when the queue is empty (production's default, 1 s, only delays e-mails;
here the drain should time the work, not the sleep). Both ways, the exactly-once check
counts the e-mails too: every e-mail goes through a counting backend (rendered like the
locmem one, one line per message appended to a file the bench reads back); each order
gets exactly one, and with the database backend every task ended ``SUCCESSFUL``.
``--single N`` sends N more requests of each path from one client, after the rounds
(one client's latency). The load average is printed at the start and the end.

Needs gunicorn (a benchmark dependency) and PostgreSQL's server binaries.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from benchmarks.serving import Load

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "tests.adapters.oscar.settings"
STORE_KEY = "TEST-STORE-KEY-0001"
EMAIL = "bench@example.ma"
PATHS = ("callback", "peer")

_wsgi: Any = None
_WSGI_LOCK = threading.Lock()
#: The file the counting e-mail backend appends a line to per message (every process).
MAIL_LOG = "CMI_BENCH_MAIL_LOG"
#: The queue's statuses of a task not yet run to its end (django-tasks-db).
UNFINISHED = ("READY", "RUNNING")


def _no_email() -> bool:
    return bool(os.environ.get("CMI_BENCH_NO_EMAIL"))


class CountingBackend:
    """An e-mail backend that renders each message (as locmem's does) and appends one
    line per message (``subject<TAB>recipients``) to the file named by ``$CMI_BENCH_MAIL_LOG``:
    the served app's workers, the task worker and this process all write there, and the
    bench reads the e-mails back at the end."""

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        self.fail_silently = fail_silently

    def open(self) -> bool:
        return False

    def close(self) -> None:
        return None

    def __enter__(self) -> CountingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send_messages(self, messages: Iterable[Any]) -> int:
        lines = []
        for message in messages:
            message.message()  # the rendering a real backend does
            lines.append(f"{message.subject}\t{','.join(message.recipients())}\n")
        descriptor = os.open(os.environ[MAIL_LOG], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(descriptor, "".join(lines).encode())  # one append: no interleaving
        finally:
            os.close(descriptor)
        return len(lines)


def _configure() -> None:
    """Settings for the served app: the test settings plus the bench's views and pooling."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    from django.conf import settings

    settings.ROOT_URLCONF = "benchmarks.bench_oscar_callback"
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 300
    settings.ALLOWED_HOSTS = ["*"]
    if _no_email():  # --no-email: measure both sides without Oscar's e-mail
        settings.CMI_OSCAR_SEND_CONFIRMATION = False
    if os.environ.get(MAIL_LOG):
        settings.EMAIL_BACKEND = "benchmarks.bench_oscar_callback.CountingBackend"


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI application gunicorn serves (built on the first request of each worker)."""
    global _wsgi  # noqa: PLW0603 - one application per worker process
    with _WSGI_LOCK:  # gthread: the first requests of a worker arrive together
        if _wsgi is None:
            _configure()
            from django.core.wsgi import get_wsgi_application

            _wsgi = get_wsgi_application()
    return _wsgi(environ, start_response)  # type: ignore[no-any-return]


def trivial(request: Any) -> Any:
    """A POST through the same middleware, CSRF-exempt like the callback."""
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


trivial.csrf_exempt = True  # type: ignore[attr-defined]

_peer_view: Any = None


def peer(request: Any) -> Any:
    """Stock Oscar's "Place order" (``PaymentDetailsView``, preview) with no payment to take.

    Oscar answers a placed order with a redirect to its thank-you page; that one becomes
    a 200 ``placed``, so that the load tells it from a redirect back to the basket or the
    checkout (a failed pre-condition).
    """
    global _peer_view  # noqa: PLW0603 - built once per process, after Django's setup
    if _peer_view is None:
        from django.http import HttpResponse
        from django.urls import reverse
        from oscar.apps.checkout.views import PaymentDetailsView

        class PeerView(PaymentDetailsView):  # type: ignore[misc]  # Oscar is untyped
            def handle_payment(self, order_number: Any, total: Any, **kwargs: Any) -> None:
                return None  # as the callback: the card is CMI's business

            def send_order_placed_email(self, order: Any) -> None:
                if not _no_email():
                    super().send_order_placed_email(order)

        view = PeerView.as_view(preview=True)
        thanks = reverse("checkout:thank-you")

        def placed(request: Any) -> Any:
            response = view(request)
            if response.status_code == 302 and response["Location"] == thanks:
                return HttpResponse("placed", content_type="text/plain")
            return response

        _peer_view = placed
    return _peer_view(request)


def __getattr__(name: str) -> Any:
    """``urlpatterns`` on demand: this module is the served URLconf, read after setup."""
    if name == "urlpatterns":
        from django.urls import include, path

        return [
            path("bench/trivial/", trivial),
            path("bench/peer/", peer),
            path("", include("tests.adapters.oscar.urls")),
        ]
    raise AttributeError(name)


# -- preparing the data ---------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One prepared request: its form body and, for the peer, its cookies."""

    fields: dict[str, str]
    cookies: dict[str, str]

    def wire(self) -> bytes | tuple[bytes, bytes]:
        body = urlencode(self.fields).encode()
        if not self.cookies:
            return body
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return body, f"Cookie: {cookie}\r\n".encode()


_ADDRESS = {"first_name": "Amina", "line1": "12 rue Tarik", "line4": "Casablanca",
            "postcode": "20000"}  # fmt: skip


def _basket(product: Any) -> Any:
    from oscar.core.loading import get_class, get_model

    basket = get_model("basket", "Basket").objects.create()
    basket.strategy = get_class("partner.strategy", "Selector")().strategy()
    basket.add_product(product, 1)
    return basket


def prepare_callback(index: int, country: Any) -> Request:
    """A payment as Oscar's payment step leaves it, and CMI's signed approval of it."""
    from cmi_django import services
    from cmi_oscar.placement import submission_data
    from django.contrib.auth.models import AnonymousUser
    from oscar.core.loading import get_class, get_model

    from cmi_core.testing import make_callback
    from tests.adapters.oscar.support import create_product

    product = create_product(title=f"Bench {index}", upc=f"BENCH-{index}", stock=10)
    basket = _basket(product)
    free = get_class("shipping.methods", "Free")()
    charge = free.calculate(basket)
    total = get_class("checkout.calculators", "OrderTotalCalculator")().calculate(basket, charge)
    basket.freeze()
    number = str(100000 + basket.id)
    address = get_model("order", "ShippingAddress")(
        last_name=f"Bench {index}", country=country, **_ADDRESS
    )
    data = submission_data(
        order_number=number,
        user=AnonymousUser(),
        basket=basket,
        shipping_address=address,
        shipping_method=free,
        shipping_charge=charge,
        billing_address=None,
        order_total=total,
        guest_email=EMAIL,
    )
    payment, request = services.create_payment(
        platform="oscar",
        reference=number,
        order={
            "oid": f"{number}-1",
            "amount": total.incl_tax,
            "email": EMAIL,
            "billing_name": "Amina Bench",
            "ok_url": "http://127.0.0.1/cmi/ok/",
            "fail_url": "http://127.0.0.1/cmi/fail/",
            "callback_url": "http://127.0.0.1/cmi/callback/",
        },
        data=data,
    )
    fields = make_callback(
        STORE_KEY,
        oid=payment.oid,
        amount=Decimal(total.incl_tax),
        trans_id=f"T{index:08d}",
        request_fields=request.as_dict(),
    )
    return Request(fields, {})


def prepare_peer(index: int, country: Any) -> Request:
    """An open basket and the session Oscar's checkout steps leave before "Place order"."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.signing import Signer
    from django.middleware.csrf import _get_new_csrf_string

    from tests.adapters.oscar.support import create_product

    product = create_product(title=f"Peer {index}", upc=f"PEER-{index}", stock=10)
    basket = _basket(product)
    session = SessionStore()
    session["checkout_data"] = {
        "guest": {"email": EMAIL},
        "shipping": {
            "new_address_fields": {
                "last_name": f"Peer {index}",
                "country_id": country.pk,
                **_ADDRESS,
            },
            "method_code": "free-shipping",
        },
    }
    session.create()
    csrf = _get_new_csrf_string()
    cookies = {
        settings.SESSION_COOKIE_NAME: session.session_key or "",
        settings.OSCAR_BASKET_COOKIE_OPEN: Signer().sign(basket.id),
        settings.CSRF_COOKIE_NAME: csrf,
    }
    return Request({"action": "place_order", "csrfmiddlewaretoken": csrf}, cookies)


def prepare(count: int) -> dict[str, list[Request]]:
    """``count`` requests of each path, each for an order of its own."""
    from tests.adapters.oscar.support import create_country

    country = create_country()
    return {
        "callback": [prepare_callback(index, country) for index in range(count)],
        "peer": [prepare_peer(index, country) for index in range(count)],
    }


# -- in process: time and queries per request ----------------------------------------


@dataclass
class InProcess:
    """The same requests through Django's test client: milliseconds and SQL queries."""

    times: list[float]
    queries: list[int]

    def line(self, name: str) -> str:
        return (
            f"{name:<9} {len(self.times):>4} requests in process: mean "
            f"{statistics.fmean(self.times):6.1f} ms, median {statistics.median(self.times):6.1f} "
            f"ms, {statistics.fmean(self.queries):5.1f} queries per request "
            f"(min {min(self.queries)}, max {max(self.queries)})"
        )


_URLS = {"callback": "/cmi/callback/", "peer": "/bench/peer/"}
_EXPECT = {"callback": b"ACTION=POSTAUTH", "peer": b"placed"}


def in_process(
    path: str, requests: list[Request], profile: cProfile.Profile | None = None
) -> InProcess:
    """Send ``requests`` through Django's test client; their time and queries each."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    times, queries = [], []
    for request in requests:
        client = Client(enforce_csrf_checks=True)
        for name, value in request.cookies.items():
            client.cookies[name] = value
        body = urlencode(request.fields)
        with CaptureQueriesContext(connection) as captured:
            if profile is not None:
                profile.enable()
            start = time.perf_counter()
            response = client.post(
                _URLS[path], body, content_type="application/x-www-form-urlencoded"
            )
            elapsed = time.perf_counter() - start
            if profile is not None:
                profile.disable()
        if response.status_code != 200 or not response.content.startswith(_EXPECT[path]):
            sys.exit(f"{path} in process: {response.status_code} {response.content[:200]!r}")
        times.append(elapsed * 1000)
        queries.append(len(captured.captured_queries))
    return InProcess(times, queries)


def _profile_report(profile: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# -- driving the server ---------------------------------------------------------------


def rate(run: Load) -> float:
    """Good answers per second (a failed callback is not a callback handled)."""
    return len(run.latencies) / run.seconds if run.seconds else 0.0


def line(name: str, run: Load) -> str:
    return (
        f"  {name:<9} {len(run.latencies):>5} in {run.seconds:5.1f} s: "
        f"{rate(run):7.1f}/s  p50 {run.percentile(50):7.1f} ms  "
        f"p99 {run.percentile(99):7.1f} ms  errors {run.errors}"
    )


def cpu_seconds(parents: tuple[int, ...]) -> dict[int, float]:
    """CPU seconds (user + system) each of ``parents`` and its live children used so far
    (Linux ``/proc``; empty elsewhere): the server's own cost, whatever else runs."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used = dict.fromkeys(parents, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        owner = pid if pid in used else ppid if ppid in used else None
        if owner is not None:
            used[owner] += (int(fields[11]) + int(fields[12])) / tick
    return used


def drive(url: str, requests: list[Request], expect: bytes, *, clients: int) -> Load:
    """``clients`` keep-alive connections POSTing ``requests`` until none is left."""
    from benchmarks.serving import hammer

    pending: queue.SimpleQueue[Request] = queue.SimpleQueue()
    for request in requests:
        pending.put(request)

    def next_body() -> bytes | tuple[bytes, bytes] | None:
        try:
            return pending.get_nowait().wire()
        except queue.Empty:
            return None

    return hammer(url, next_body, expect=expect, clients=clients)


def _arguments() -> argparse.Namespace:
    from benchmarks.serving import add_server_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrency", default="1,4,32", help="client counts, comma-separated (1,4,32)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per count")
    parser.add_argument("--per-round", type=int, default=150, help="requests per path per round")
    parser.add_argument("--in-process", type=int, default=20, help="requests per path")
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N")
    add_server_arguments(parser)
    parser.add_argument(
        "--no-email",
        action="store_true",
        help="without Oscar's order-placed e-mail, on both sides",
    )
    parser.add_argument(
        "--tasks",
        choices=("immediate", "database"),
        default="immediate",
        help="the served app's task backend: the callback's e-mail in the request "
        "(immediate) or queued and sent by db_worker beside the server (database)",
    )
    parser.add_argument(
        "--task-workers", type=int, default=1, help="db_worker processes (--tasks database)"
    )
    parser.add_argument(
        "--worker-interval",
        type=float,
        default=0.1,
        help="db_worker's --interval, its sleep when the queue is empty (production's "
        "default is 1 s: it only delays e-mails; shorter, the drain times the work)",
    )
    parser.add_argument(
        "--single", type=int, default=0, help="then N requests per path from one client"
    )
    args = parser.parse_args()
    # Read by tests/adapters/tasksettings.py when the settings load (here, in gunicorn's
    # workers and in the task worker, which inherit the environment).
    os.environ["CMI_TEST_TASKS"] = args.tasks
    args.levels = [int(level) for level in args.concurrency.split(",")]
    args.clients = max(args.levels)  # set again per count: a server per count
    if args.no_email:
        os.environ["CMI_BENCH_NO_EMAIL"] = "1"
    return args


def measure_in_process(args: argparse.Namespace, requests: dict[str, list[Request]]) -> None:
    """Both paths in this process (after warming each), alternating, then their figures."""
    warm = 3
    for path in PATHS:
        in_process(path, requests[path][:warm])
    profiles = {path: cProfile.Profile() if args.profile else None for path in PATHS}
    runs: dict[str, list[InProcess]] = {path: [] for path in PATHS}
    for index in range(warm, warm + args.in_process):
        for path in PATHS:
            runs[path].append(in_process(path, requests[path][index : index + 1], profiles[path]))
    print("in process (Django's test client, same database):")
    for path in PATHS:
        merged = InProcess(
            [t for run in runs[path] for t in run.times],
            [q for run in runs[path] for q in run.queries],
        )
        print("  " + merged.line(path))
    for path in PATHS:
        profile = profiles[path]
        if profile is not None:
            print(f"\n--- cProfile, {path} ---\n{_profile_report(profile, args.profile)}")


def serve_worker() -> None:
    """The task worker (``--serve-worker``, started by the bench): ``manage.py db_worker``
    on the served app's settings (the bench's e-mail backend among them)."""
    _configure()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("db_worker", "--interval", os.environ.get("CMI_BENCH_WORKER_INTERVAL", "1"))


def start_workers(args: argparse.Namespace, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """``--task-workers`` task workers, for ``--tasks database``; none for ``immediate``."""
    if args.tasks != "database":
        return []
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-worker"]
    env = {**env, "CMI_BENCH_WORKER_INTERVAL": str(args.worker_interval)}
    return [
        subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - our own command line
        for _ in range(args.task_workers)
    ]


def queued() -> int:
    """Tasks in the queue not yet run to their end (0 without the database backend)."""
    from django.conf import settings

    if "DatabaseBackend" not in str(settings.TASKS["default"]["BACKEND"]):
        return 0
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status__in=UNFINISHED).count()


def drain(timeout: float = 900.0) -> float:
    """Wait until the task queue is empty; the seconds it took."""
    began = time.monotonic()
    while queued():
        if time.monotonic() - began > timeout:
            sys.exit(f"the task queue did not drain in {timeout:.0f} s: {queued()} left")
        time.sleep(0.05)
    return time.monotonic() - began


def main() -> None:  # noqa: PLR0915 - one linear script: set up, measure, print, check
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:] == ["--serve-worker"]:
        serve_worker()
        return
    args = _arguments()

    from benchmarks.serving import Load, describe, free_port, gunicorn, wait_for
    from tests.pgserver import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    server.start()
    server_process = None
    workers: list[subprocess.Popen[bytes]] = []
    mail_log = Path(tempfile.mkdtemp(prefix="cmi-bench-mail-")) / "sent.txt"
    mail_log.touch()
    try:
        os.environ.update(
            {
                "CMI_TEST_DATABASE": "postgres",
                "CMI_TEST_POSTGRES_DSN": server.dsn,
                "DJANGO_SETTINGS_MODULE": SETTINGS,
                MAIL_LOG: str(mail_log),
            }
        )
        _configure()
        import django

        django.setup()
        from django.db import connection

        name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        warm = 8 * args.workers
        local = 3 + args.in_process
        served = args.rounds * args.per_round * len(args.levels) + args.single
        count = local + warm * len(args.levels) + served
        print(f"database {name} on PostgreSQL {bindir.parent.name}; preparing {count} x 2...")
        requests = prepare(count)
        email = "without" if args.no_email else "with"
        print(f"Oscar's order-placed e-mail: {email}, on both sides")
        from django.conf import settings

        backend = settings.TASKS["default"]["BACKEND"]
        print(f"task backend ({args.tasks}): {backend}; load average {_load()}\n")
        measure_in_process(args, requests)
        connection.close()

        env = {**os.environ, "CMI_TEST_POSTGRES_DSN": server.dsn.rsplit("/", 1)[0] + f"/{name}"}
        workers = start_workers(args, env)
        print(f"\nalternating rounds of {args.per_round} requests per path")
        if workers:
            print(f"{len(workers)} task worker{'s' * (len(workers) > 1)} (db_worker) beside it")
        answered = dict.fromkeys(PATHS, 0)
        errors = 0
        left = {path: requests[path][local:] for path in PATHS}

        def take(path: str, n: int) -> list[Request]:
            taken, left[path] = left[path][:n], left[path][n:]
            return taken

        results: dict[int, dict[str, Load]] = {}
        drains = dict.fromkeys(args.levels, 0.0)  # seconds the queue took to empty
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        # CPU seconds of (gunicorn, PostgreSQL, the task workers) during each path's rounds
        cpu = {path: [0.0, 0.0, 0.0] for path in PATHS}
        worker_pids = tuple(worker.pid for worker in workers)
        worker_cpu = sum(cpu_seconds(worker_pids).values())  # before the rounds
        for clients in args.levels:
            # A server per client count, each worker accepting at most its share of this
            # count's connections (serving.connections): capped for the largest count, the
            # accept races put 2 of 4 keep-alive connections on one worker now and then, where
            # its two threads share one interpreter lock while another worker idles, and the
            # round's rate followed that placement, not the path.
            if server_process is not None:
                server_process.terminate()
                server_process.wait(timeout=30)
            args.clients = clients
            port = free_port()
            server_process = gunicorn(
                args, "benchmarks.bench_oscar_callback:application", port, env
            )
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/bench/trivial/")
            print(f"\n{describe(args)}")
            for path in PATHS:  # warm every worker on both paths (imports, templates)
                run = drive(base + _URLS[path], take(path, warm), _EXPECT[path], clients=clients)
                answered[path] += len(run.latencies)
                errors += run.errors
            if workers:  # the task worker ran the tasks queued so far
                print(f"task worker ready: {drain():.1f} s to empty the queue")
            servers = (server_process.pid, postmaster, *worker_pids)
            runs: dict[str, list[Load]] = {path: [] for path in PATHS}
            for round_ in range(args.rounds):
                order = PATHS if round_ % 2 == 0 else PATHS[::-1]
                for path in order:
                    batch = take(path, args.per_round)
                    before = cpu_seconds(servers)
                    run = drive(base + _URLS[path], batch, _EXPECT[path], clients=clients)
                    note = ""
                    if workers:  # the round's e-mails, sent before the next round begins
                        note = f"{queued()} tasks left in the queue"
                        if path == "callback":
                            drained = drain()
                            drains[clients] += drained
                            note += f", drained in {drained:.2f} s"
                        print(f"  ({clients} clients, round {round_ + 1}, {path}: {note})")
                    after = cpu_seconds(servers)
                    for index, pid in enumerate(servers):
                        cpu[path][min(index, 2)] += after[pid] - before[pid]
                    runs[path].append(run)
                    answered[path] += len(run.latencies)
                    errors += run.errors
            results[clients] = {path: Load.merged(runs[path]) for path in PATHS}
            merged = results[clients]
            print(f"{clients} client{'s' if clients > 1 else ''}:")
            for path in PATHS:
                print(line(path, merged[path]))
            print(f"  ratio callback/peer: {rate(merged['callback']) / rate(merged['peer']):.2f}")
            if workers:
                print(f"  with the drain: {drained_line(merged, drains[clients])}")
        print("\nsummary (req/s callback / peer = ratio; p50 ms callback / peer):")
        for clients, merged in results.items():
            cb, pr = merged["callback"], merged["peer"]
            print(
                f"  {clients:>3} clients: {rate(cb):6.1f} / {rate(pr):6.1f} = "
                f"{rate(cb) / rate(pr):.2f}x; p50 {cb.percentile(50):6.1f} / "
                f"{pr.percentile(50):6.1f}"
                + (f"; with the drain {drained_line(merged, drains[clients])}" if workers else "")
            )
        print(
            "server CPU per request, all rounds (gunicorn's workers + PostgreSQL"
            + (" + the task worker, charged to the callback):" if workers else "):")
        )
        measured = args.rounds * args.per_round * len(args.levels)
        # The worker sends the callbacks' e-mails, in whichever round it gets to them.
        worker = sum(cpu[path][2] for path in PATHS) * 1000 / measured
        for path in PATHS:
            app, database = (seconds * 1000 / measured for seconds in cpu[path][:2])
            mine = worker if path == "callback" else 0.0
            extra = f" + {mine:5.1f} ms" if workers else ""
            total = app + database + mine
            print(f"  {path:<9} {app:5.1f} ms + {database:5.1f} ms{extra} = {total:5.1f} ms")
        if args.single:
            print(f"\none client, {args.single} requests per path (after the rounds):")
            for path in PATHS:
                run = drive(base + _URLS[path], take(path, args.single), _EXPECT[path], clients=1)
                answered[path] += len(run.latencies)
                errors += run.errors
                mean = statistics.fmean(run.latencies) * 1000 if run.latencies else float("nan")
                print(line(path, run) + f"  mean {mean:.1f} ms")
        if workers:
            remaining = queued()
            waited = drain()
            worker_cpu = sum(cpu_seconds(worker_pids).values()) - worker_cpu
            print(
                f"\ntask queue: {remaining} left after the last round, drained in {waited:.1f} s; "
                f"the task worker used {worker_cpu:.1f} s CPU in all "
                f"({worker_cpu * 1000 / max(1, answered['callback']):.1f} ms per callback)"
            )
        print(f"load average at the end: {_load()}")
        answered = {path: answered[path] + local for path in PATHS}
        check(answered, errors, mail_log, expect_email=not args.no_email)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
        if server_process is not None:
            server_process.terminate()
            server_process.wait(timeout=30)
        server.stop()
        mail_log.unlink(missing_ok=True)
        mail_log.parent.rmdir()


def drained_line(merged: dict[str, Load], drain_seconds: float) -> str:
    """The callback's rate counting the time its tasks took to run after its rounds."""
    callback = merged["callback"]
    sustained = len(callback.latencies) / (callback.seconds + drain_seconds)
    return (
        f"callback {sustained:.1f}/s ({drain_seconds:.1f} s of draining), "
        f"{sustained / rate(merged['peer']):.2f}x the peer"
    )


def _load() -> str:
    """The machine's load average (1, 5, 15 minutes), for the record."""
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def sent_emails(mail_log: Path, callback_numbers: set[str]) -> dict[str, Counter[str]]:
    """The e-mails the counting backend recorded, per path: order number -> messages."""
    sent: dict[str, Counter[str]] = {path: Counter() for path in PATHS}
    for entry in mail_log.read_text().splitlines():
        found = re.search(r"\b(\d{6,})\b", entry.split("\t", 1)[0])
        if found is None:
            sys.exit(f"an e-mail without an order number: {entry!r}")
        number = found.group(1)
        sent["callback" if number in callback_numbers else "peer"][number] += 1
    return sent


def check(answered: dict[str, int], errors: int, mail_log: Path, *, expect_email: bool) -> None:
    """Exactly once, both paths: one order per answered request, one debit per callback,
    one e-mail per order (none with ``--no-email``)."""
    from cmi_django.models import Payment
    from oscar.core.loading import get_model

    order_model = get_model("order", "Order")
    captured = Payment.objects.filter(state="captured").count()
    paid = order_model.objects.filter(sources__source_type__code="cmi").distinct().count()
    debits = get_model("payment", "Transaction").objects.filter(txn_type="Debit").count()
    placed = order_model.objects.filter(sources__isnull=True).count()
    submitted = get_model("basket", "Basket").objects.filter(
        status="Submitted", order__sources__isnull=True
    )
    baskets = submitted.distinct().count()
    numbers = order_model.objects.filter(sources__source_type__code="cmi").values_list(
        "number", flat=True
    )
    sent = sent_emails(mail_log, set(numbers))
    mails = {path: sum(sent[path].values()) for path in PATHS}
    twice = sum(1 for path in PATHS for count in sent[path].values() if count > 1)
    tasks, tasks_ok = "", True
    from django.conf import settings

    if "DatabaseBackend" in str(settings.TASKS["default"]["BACKEND"]):
        from django_tasks_db.models import DBTaskResult

        rows = DBTaskResult.objects
        successful = rows.filter(status="SUCCESSFUL").count()
        others = rows.exclude(status="SUCCESSFUL").count()
        tasks = (
            f"; task queue: {successful} successful, "
            f"{rows.filter(status='FAILED').count()} failed, "
            f"{rows.filter(status__in=UNFINISHED).count()} unfinished"
        )
        # one e-mail task per callback (none with --no-email), each run to its end
        tasks_ok = not others and successful == (answered["callback"] if expect_email else 0)
    print(
        f"\neffects: callback: {answered['callback']} answered ACTION=POSTAUTH, {captured} "
        f"payments captured, {paid} orders, {debits} debits, {mails['callback']} e-mails; "
        f"peer: {answered['peer']} answered, {placed} orders, {baskets} baskets submitted, "
        f"{mails['peer']} e-mails; {twice} orders e-mailed more than once; "
        f"{errors} errors{tasks}"
    )
    expected = answered if expect_email else dict.fromkeys(PATHS, 0)
    callback_ok = answered["callback"] == captured == paid == debits
    mail_ok = mails == expected and not twice and tasks_ok
    if errors or not callback_ok or not answered["peer"] == placed == baskets or not mail_ok:
        sys.exit("effects do not match: not exactly once")


if __name__ == "__main__":
    main()
