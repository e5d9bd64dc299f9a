"""CMI's callback against Oscar placing the same order itself, on a real server.

    .venv/bin/python benchmarks/bench_oscar_callback.py [--concurrency 1,4,32] [--rounds 3]
        [--per-round 150] [--in-process 20] [--profile N] [--workers 4] [--threads 2]
        [--worker-class gthread|sync] [--worker-connections N] [--no-email]

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
loopback with the same settings, middleware and e-mail backend, and driven in
alternating rounds (callback first, then peer first) at each concurrency from keep-alive
connections (``benchmarks/serving.py``). Prints requests per second, p50/p99 for both, the
ratio callback/peer per concurrency, the server's CPU per request (gunicorn's workers
and PostgreSQL, from ``/proc``), the same requests in this process (mean time and SQL
queries per request, through Django's test client), and checks exactly once:
answered = orders = debits for the callbacks, answered = orders = submitted baskets for
the peer. Oscar's order-placed e-mail is sent on both sides (the callback after its
commit, before the reply); ``--no-email`` turns it off on both. ``--profile N`` prints
cProfile's top N functions of the in-process requests.

Needs gunicorn (a benchmark dependency) and PostgreSQL's server binaries.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import queue
import statistics
import sys
import threading
import time
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


def _no_email() -> bool:
    return bool(os.environ.get("CMI_BENCH_NO_EMAIL"))


def _configure() -> None:
    """Settings for the served app: the test settings plus the bench's views and pooling."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    from django.conf import settings

    settings.ROOT_URLCONF = "benchmarks.bench_oscar_callback"
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 300
    settings.ALLOWED_HOSTS = ["*"]
    if _no_email():  # --no-email: measure both sides without Oscar's e-mail
        settings.CMI_OSCAR_SEND_CONFIRMATION = False


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
    args = parser.parse_args()
    args.levels = [int(level) for level in args.concurrency.split(",")]
    args.clients = max(args.levels)  # the server's connections per worker follow the most
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


def main() -> None:  # noqa: PLR0915 - one linear script: set up, measure, print, check
    sys.path.insert(0, str(ROOT))
    args = _arguments()

    from benchmarks.serving import Load, describe, free_port, gunicorn, wait_for
    from tests.pgserver import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    server.start()
    server_process = None
    try:
        os.environ.update(
            {
                "CMI_TEST_DATABASE": "postgres",
                "CMI_TEST_POSTGRES_DSN": server.dsn,
                "DJANGO_SETTINGS_MODULE": SETTINGS,
            }
        )
        _configure()
        import django

        django.setup()
        from django.db import connection

        name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        warm = 8 * args.workers
        local = 3 + args.in_process
        served = args.rounds * args.per_round * len(args.levels)
        count = local + warm + served
        print(f"database {name} on PostgreSQL {bindir.parent.name}; preparing {count} x 2...")
        requests = prepare(count)
        email = "without" if args.no_email else "with"
        print(f"Oscar's order-placed e-mail: {email}, on both sides\n")
        measure_in_process(args, requests)
        connection.close()

        port = free_port()
        env = {**os.environ, "CMI_TEST_POSTGRES_DSN": server.dsn.rsplit("/", 1)[0] + f"/{name}"}
        server_process = gunicorn(args, "benchmarks.bench_oscar_callback:application", port, env)
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/bench/trivial/")
        print(f"\n{describe(args)}; alternating rounds of {args.per_round} requests per path")
        answered = dict.fromkeys(PATHS, 0)
        errors = 0
        left = {path: requests[path][local:] for path in PATHS}

        def take(path: str, n: int) -> list[Request]:
            taken, left[path] = left[path][:n], left[path][n:]
            return taken

        for path in PATHS:  # warm every worker on both paths (imports, templates)
            run = drive(base + _URLS[path], take(path, warm), _EXPECT[path], clients=warm)
            answered[path] += len(run.latencies)
            errors += run.errors
        results: dict[int, dict[str, Load]] = {}
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        servers = (server_process.pid, postmaster)
        cpu = {path: [0.0, 0.0] for path in PATHS}  # (gunicorn, PostgreSQL) CPU seconds
        for clients in args.levels:
            runs: dict[str, list[Load]] = {path: [] for path in PATHS}
            for round_ in range(args.rounds):
                order = PATHS if round_ % 2 == 0 else PATHS[::-1]
                for path in order:
                    batch = take(path, args.per_round)
                    before = cpu_seconds(servers)
                    run = drive(base + _URLS[path], batch, _EXPECT[path], clients=clients)
                    after = cpu_seconds(servers)
                    for index, pid in enumerate(servers):
                        cpu[path][index] += after[pid] - before[pid]
                    runs[path].append(run)
                    answered[path] += len(run.latencies)
                    errors += run.errors
            results[clients] = {path: Load.merged(runs[path]) for path in PATHS}
            merged = results[clients]
            print(f"{clients} client{'s' if clients > 1 else ''}:")
            for path in PATHS:
                print(line(path, merged[path]))
            print(f"  ratio callback/peer: {rate(merged['callback']) / rate(merged['peer']):.2f}")
        print("\nsummary (req/s callback / peer = ratio; p50 ms callback / peer):")
        for clients, merged in results.items():
            cb, pr = merged["callback"], merged["peer"]
            print(
                f"  {clients:>3} clients: {rate(cb):6.1f} / {rate(pr):6.1f} = "
                f"{rate(cb) / rate(pr):.2f}x; p50 {cb.percentile(50):6.1f} / "
                f"{pr.percentile(50):6.1f}"
            )
        print("server CPU per request, all rounds (gunicorn's workers + PostgreSQL):")
        measured = args.rounds * args.per_round * len(args.levels)
        for path in PATHS:
            app, database = (seconds * 1000 / measured for seconds in cpu[path])
            print(f"  {path:<9} {app:5.1f} ms + {database:5.1f} ms = {app + database:5.1f} ms")
        answered = {path: answered[path] + local for path in PATHS}
        check(answered, errors)
    finally:
        if server_process is not None:
            server_process.terminate()
            server_process.wait(timeout=30)
        server.stop()


def check(answered: dict[str, int], errors: int) -> None:
    """Exactly once, both paths: one order per answered request, one debit per callback."""
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
    print(
        f"\neffects: callback: {answered['callback']} answered ACTION=POSTAUTH, {captured} "
        f"payments captured, {paid} orders, {debits} debits; peer: {answered['peer']} "
        f"answered, {placed} orders, {baskets} baskets submitted; {errors} errors"
    )
    callback_ok = answered["callback"] == captured == paid == debits
    if errors or not callback_ok or not answered["peer"] == placed == baskets:
        sys.exit("effects do not match: not exactly once")


if __name__ == "__main__":
    main()
