"""CMI's callback on a real server: callbacks per second, latency, and exactly-once effects.

    .venv/bin/python benchmarks/bench_oscar_callback.py [--clients 32] [--payments 1500]
        [--seconds 30] [--workers 4] [--threads 2] [--worker-class gthread|sync]
        [--worker-connections N] [--single 100] [--no-email]

Starts a throw-away PostgreSQL (``tests/pgserver.py``), creates the Oscar test database
(``tests/adapters/oscar/settings.py``), prepares distinct payments (each a frozen basket
with its checkout data, as the payment step leaves it, for a product of its own), serves
the shop with gunicorn (gthread workers, each accepting at most its share of the
connections: ``serving.connections``; persistent database connections) on loopback, and
drives:

1. the callback endpoint: every client POSTs valid, signed, approved callbacks for
   distinct payments; each places an Oscar order and captures it (``ACTION=POSTAUTH``);
2. a trivial Django view under the same server, middleware and settings;
3. both again from one client (``--single`` requests): the latency of one callback alone.

Oscar's order-placed e-mail is rendered and sent after the commit but before the reply
(``transaction.on_commit``, in the request); ``--no-email`` turns it off
(``CMI_OSCAR_SEND_CONFIRMATION = False``) to show what it costs.

Prints requests per second, p50/p99 latency, errors, the callback/trivial ratio, and
checks the effects: one order and one debit per payment, nothing else. Needs gunicorn
(a benchmark dependency) and PostgreSQL's server binaries.
"""

from __future__ import annotations

import argparse
import itertools
import os
import queue
import statistics
import sys
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.serving import Load

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "tests.adapters.oscar.settings"
STORE_KEY = "TEST-STORE-KEY-0001"

_wsgi: Any = None
_WSGI_LOCK = threading.Lock()


def _configure() -> None:
    """Settings for the served app: the test settings plus a trivial view and pooling."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    from django.conf import settings

    settings.ROOT_URLCONF = "benchmarks.bench_oscar_callback"
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 300
    settings.ALLOWED_HOSTS = ["*"]
    if os.environ.get("CMI_BENCH_NO_EMAIL"):  # --no-email: measure without Oscar's e-mail
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
    """The comparison: a POST through the same middleware, CSRF-exempt like the callback."""
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


trivial.csrf_exempt = True  # type: ignore[attr-defined]


def __getattr__(name: str) -> Any:
    """``urlpatterns`` on demand: this module is the served URLconf, read after setup."""
    if name == "urlpatterns":
        from django.urls import include, path

        return [path("bench/trivial/", trivial), path("", include("tests.adapters.oscar.urls"))]
    raise AttributeError(name)


# -- preparing the data ---------------------------------------------------------------


def prepare(count: int) -> list[dict[str, str]]:
    """``count`` payments as Oscar's payment step leaves them; their signed callbacks."""
    from cmi_django import services
    from cmi_oscar.placement import submission_data
    from django.contrib.auth.models import AnonymousUser
    from oscar.core.loading import get_class, get_model

    from cmi_core.testing import make_callback
    from tests.adapters.oscar.support import create_country, create_product

    country = create_country()
    selector = get_class("partner.strategy", "Selector")()
    free = get_class("shipping.methods", "Free")()
    calculator = get_class("checkout.calculators", "OrderTotalCalculator")()
    basket_model = get_model("basket", "Basket")
    address_model = get_model("order", "ShippingAddress")
    callbacks = []
    for index in range(count):
        # One product each: otherwise every order waits on one stock record's row lock
        # (Oscar allocates stock in the order's transaction), which measures Oscar's
        # stock bookkeeping for a single best-seller rather than the callback path.
        product = create_product(title=f"Bench {index}", upc=f"BENCH-{index}", stock=10)
        basket = basket_model.objects.create()
        basket.strategy = selector.strategy()
        basket.add_product(product, 1)
        charge = free.calculate(basket)
        total = calculator.calculate(basket, charge)
        basket.freeze()
        number = str(100000 + basket.id)
        address = address_model(
            first_name="Amina", last_name=f"Bench {index}", line1="12 rue Tarik",
            line4="Casablanca", postcode="20000", country=country,
        )  # fmt: skip
        data = submission_data(
            order_number=number,
            user=AnonymousUser(),
            basket=basket,
            shipping_address=address,
            shipping_method=free,
            shipping_charge=charge,
            billing_address=None,
            order_total=total,
            guest_email="bench@example.ma",
        )
        payment, request = services.create_payment(
            platform="oscar",
            reference=number,
            order={
                "oid": f"{number}-1",
                "amount": total.incl_tax,
                "email": "bench@example.ma",
                "billing_name": "Amina Bench",
                "ok_url": "http://127.0.0.1/cmi/ok/",
                "fail_url": "http://127.0.0.1/cmi/fail/",
                "callback_url": "http://127.0.0.1/cmi/callback/",
            },
            data=data,
        )
        callbacks.append(
            make_callback(
                STORE_KEY,
                oid=payment.oid,
                amount=Decimal(total.incl_tax),
                trans_id=f"T{index:08d}",
                request_fields=request.as_dict(),
            )
        )
    return callbacks


# -- driving the server ---------------------------------------------------------------


def rate(run: Load) -> float:
    """Good answers per second (a failed callback is not a callback handled)."""
    return len(run.latencies) / run.seconds if run.seconds else 0.0


def line(name: str, run: Load) -> str:
    return (
        f"{name:<10} {len(run.latencies):>6} requests in {run.seconds:5.1f} s: "
        f"{rate(run):8.1f}/s  p50 {run.percentile(50):6.1f} ms  "
        f"p99 {run.percentile(99):6.1f} ms  mean "
        f"{statistics.fmean(run.latencies) * 1000 if run.latencies else 0:6.1f} ms  "
        f"errors {run.errors}"
    )


def drive(
    url: str,
    bodies: Callable[[], dict[str, str] | None],
    expect: str,
    *,
    clients: int,
    seconds: float,
) -> Load:
    """``clients`` keep-alive connections POSTing ``bodies()`` until they or time run out."""
    from urllib.parse import urlencode

    from benchmarks.serving import hammer

    def next_body() -> bytes | None:
        body = bodies()
        return None if body is None else urlencode(body).encode()

    return hammer(url, next_body, expect=expect.encode(), clients=clients, seconds=seconds)


def _next(bodies: queue.SimpleQueue[dict[str, str]]) -> dict[str, str] | None:
    try:
        return bodies.get_nowait()
    except queue.Empty:
        return None


def _arguments() -> argparse.Namespace:
    from benchmarks.serving import add_server_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=30.0)
    add_server_arguments(parser)
    parser.add_argument("--single", type=int, default=100, help="callbacks from one client")
    parser.add_argument(
        "--no-email",
        action="store_true",
        help="without Oscar's order-placed e-mail (sent after the commit, before the reply)",
    )
    args = parser.parse_args()
    if args.no_email:
        os.environ["CMI_BENCH_NO_EMAIL"] = "1"
    return args


def main() -> None:
    sys.path.insert(0, str(ROOT))
    args = _arguments()

    from benchmarks.serving import describe, free_port, gunicorn, wait_for
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
        print(f"database {name} on PostgreSQL {bindir.parent.name}; preparing payments...")
        callbacks = prepare(args.payments + args.single)
        connection.close()

        port = free_port()
        env = {**os.environ, "CMI_TEST_POSTGRES_DSN": server.dsn.rsplit("/", 1)[0] + f"/{name}"}
        server_process = gunicorn(args, "benchmarks.bench_oscar_callback:application", port, env)
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/bench/trivial/")
        print(f"{describe(args)}; {args.clients} clients on loopback\n")
        pending: queue.SimpleQueue[dict[str, str]] = queue.SimpleQueue()
        for body in callbacks[: args.payments]:
            pending.put(body)
        alone: queue.SimpleQueue[dict[str, str]] = queue.SimpleQueue()
        for body in callbacks[args.payments :]:
            alone.put(body)

        def next_callback() -> dict[str, str] | None:
            return _next(pending)

        count = itertools.count()

        # Warm both paths (imports, connections) before measuring.
        drive(f"{base}/bench/trivial/", dict, "ok", clients=args.clients, seconds=2)
        cb = drive(
            f"{base}/cmi/callback/",
            next_callback,
            "ACTION=POSTAUTH",
            clients=args.clients,
            seconds=args.seconds,
        )
        trivial_run = drive(
            f"{base}/bench/trivial/",
            dict,
            "ok",
            clients=args.clients,
            seconds=min(args.seconds, 15.0),
        )
        single = [
            drive(
                f"{base}/cmi/callback/",
                lambda: _next(alone),
                "ACTION=POSTAUTH",
                clients=1,
                seconds=args.seconds,
            ),
            drive(
                f"{base}/bench/trivial/",
                lambda: {} if next(count) < args.single else None,
                "ok",
                clients=1,
                seconds=args.seconds,
            ),
        ]
        email = "without" if args.no_email else "with"
        print(f"{args.clients} clients ({email} the order-placed e-mail):")
        print(line("callback", cb))
        print(line("trivial", trivial_run))
        print(f"ratio callback/trivial: {rate(cb) / rate(trivial_run):.2f}")
        print("one client:")
        for name, run in zip(("callback", "trivial"), single, strict=True):
            print(line(name, run))
        check(len(cb.latencies) + len(single[0].latencies))
    finally:
        if server_process is not None:
            server_process.terminate()
            server_process.wait(timeout=30)
        server.stop()


def check(answered: int) -> None:
    """Exactly once: an order and one debit per captured payment, nothing more."""
    from cmi_django.models import Payment
    from oscar.core.loading import get_model

    captured = Payment.objects.filter(state="captured").count()
    orders = get_model("order", "Order").objects.count()
    debits = get_model("payment", "Transaction").objects.filter(txn_type="Debit").count()
    print(
        f"effects: {answered} callbacks answered ACTION=POSTAUTH, {captured} payments "
        f"captured, {orders} orders, {debits} debits"
    )
    if not answered == captured == orders == debits:
        sys.exit("effects do not match: not exactly once")


if __name__ == "__main__":
    main()
