"""The Saleor app under a real threaded WSGI server with 32 concurrent clients.

    .venv/bin/python benchmarks/bench_saleor.py [--requests 2000] [--clients 32]

Three paths on the same server and database (SQLite in a temporary file, or PostgreSQL
with ``CMI_BENCH_POSTGRES_DSN=postgresql://...``):

- ``trivial``: a view answering ``ok`` (the server's own cost);
- ``webhook``: PAYMENT_GATEWAY_INITIALIZE_SESSION, signed like Saleor signs it: installation
  lookup, detached JWS RS256 verification, recipient check, channel lookup, JSON answer;
- ``callback``: CMI's callback for an already captured payment (a duplicate): parse, verify
  the ver3 hash, lock the row, decide, write the callback log. The first delivery of a
  callback also waits for Saleor's ``transactionEventReport``, which is Saleor's latency,
  not the app's, and is left out.

Prints requests/s, p50/p99 latency per path and the ratio of each path's throughput to the
trivial view's (issue 5's goal: ratio >= 0.5, p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "adapters")]


def configure(db_path: str) -> None:
    import django
    from django.conf import settings

    dsn = os.environ.get("CMI_BENCH_POSTGRES_DSN")
    if dsn:
        os.environ["CMI_TEST_DATABASE"] = "postgres"
        os.environ["CMI_TEST_POSTGRES_DSN"] = dsn
        from tests.adapters.dbsettings import database_settings

        databases = database_settings()
    else:
        databases = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": db_path,
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
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
        ROOT_URLCONF=__name__,
        DATABASES=databases,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CMI_PAYMENTS={},
        CMI_SALEOR_APP_URL="http://127.0.0.1:8000",
        LOGGING_CONFIG=None,
    )
    django.setup()


urlpatterns: list[object] = []


def trivial(request: object) -> object:
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


def setup_data() -> tuple[dict[str, object], bytes, dict[str, str], bytes]:
    """An installation, a channel, a captured payment; a signed webhook and a callback."""
    from cmi_django import services
    from cmi_saleor.hooks import silenced
    from cmi_saleor.models import ChannelConfiguration, SaleorInstallation, TransactionMap
    from django.core.management import call_command
    from django.urls import include, path

    from cmi_core.sandbox import DEFAULT_MERCHANT
    from cmi_core.testing import make_callback
    from tests.adapters.saleor.standin import FakeSaleor, checkout, recipient

    urlpatterns[:] = [path("trivial", trivial), path("", include("cmi_saleor.urls"))]
    call_command("migrate", verbosity=0)
    saleor = FakeSaleor()
    installation = SaleorInstallation.objects.create(
        saleor_api_url=saleor.api_url, app_id=saleor.app_id, token=saleor.token, jwks=saleor.jwks()
    )
    channel = ChannelConfiguration.objects.create(
        installation=installation,
        channel="default-channel",
        client_id=DEFAULT_MERCHANT.client_id,
        store_key=DEFAULT_MERCHANT.store_key,
    )
    payment, request = services.create_payment(
        platform="saleor",
        reference="VHJhbnNhY3Rpb25JdGVtOjE=",
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
        oid=payment.oid,
        payment=payment,
        installation=installation,
        saleor_api_url=saleor.api_url,
        channel=channel.channel,
        transaction_id="VHJhbnNhY3Rpb25JdGVtOjE=",
        return_url="https://shop.example.ma/return",
    )
    fields = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=payment.oid,
        amount=payment.amount,
        request_fields=request.as_dict(),
    )
    with silenced():  # the first delivery (its Saleor report is not measured)
        outcome = services.handle_callback(fields)
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
    return {"saleor": saleor}, body, headers, urlencode(fields).encode()


def serve() -> tuple[str, multiprocessing.Process]:
    """The server in a child process (forked), so that clients and server share no GIL."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.db import connections

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadedWSGIServer):
        request_queue_size = 256  # Django's default (10) drops SYNs under 32 clients

    server = Server(("127.0.0.1", 0), Quiet, allow_reuse_address=True)
    server.daemon_threads = True
    server.set_app(WSGIHandler())
    connections.close_all()
    child = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    child.start()
    server.socket.close()
    return f"http://127.0.0.1:{server.server_address[1]}", child


def load(
    url: str, body: bytes | None, headers: dict[str, str], total: int, clients: int
) -> tuple[float, list[float], int]:
    import requests

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        session = requests.Session()
        mine: list[float] = []
        bad = 0
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            start = time.perf_counter()
            if body is None:
                response = session.get(url, timeout=30)
            else:
                response = session.post(url, data=body, headers=headers, timeout=30)
            mine.append(time.perf_counter() - start)
            bad += response.status_code != 200
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began, latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure(str(Path(tmp) / "bench.sqlite3"))
        _, webhook_body, webhook_headers, callback_body = setup_data()
        base, server = serve()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        paths = {
            "trivial": (f"{base}/trivial", None, {}),
            "webhook": (
                f"{base}/api/webhooks/payment-gateway-initialize-session",
                webhook_body,
                {**webhook_headers, "Content-Type": "application/json"},
            ),
            "callback": (f"{base}/cmi/callback", callback_body, form),
        }
        load(paths["trivial"][0], None, {}, 200, args.clients)  # warm up
        results = {}
        for name, (url, body, headers) in paths.items():
            elapsed, latencies, errors = load(url, body, headers, args.requests, args.clients)
            latencies.sort()
            results[name] = (args.requests / elapsed, latencies, errors)
        server.terminate()
        server.join()
    base_rps = results["trivial"][0]
    db = "PostgreSQL" if os.environ.get("CMI_BENCH_POSTGRES_DSN") else "SQLite"
    print(
        f"{args.requests} requests per path, {args.clients} concurrent clients, {db}, "
        f"Django's threaded WSGI server, {os.cpu_count()} CPUs"
    )
    print(f"{'path':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}{'errors':>8}")
    for name, (rps, latencies, errors) in results.items():
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(f"{name:<10}{rps:>10.0f}{p50:>10.1f}{p99:>10.1f}{rps / base_rps:>8.2f}{errors:>8}")


if __name__ == "__main__":
    main()
