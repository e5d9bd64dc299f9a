"""Fixtures of the shared layer's tests: payments, signed callbacks, the real emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django import services
from cmi_django.models import Operation, Payment
from django.test import Client

from cmi_core import CMIClient
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.testing import make_callback
from tests.adapters.dbsettings import prepared_statements, using_postgres

STORE_KEY = "TEST-STORE-KEY-0001"
AMOUNT = Decimal("120.50")

postgres_only = pytest.mark.skipif(
    not using_postgres(), reason="needs PostgreSQL (runs in dev.py's PostgreSQL pass)"
)
#: What Django's default binding does (psycopg's client-side binding: the folded BEGIN
#: and COMMIT); not in dev.py's pass with prepared statements, which folds nothing.
client_side_binding = pytest.mark.skipif(
    prepared_statements(),
    reason="Django's default client-side binding (not the prepared-statements pass)",
)


def order(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "amount": AMOUNT,
        "email": "client@example.ma",
        "billing_name": "Amina Test",
        "ok_url": "https://shop.example.ma/cmi/ok/",
        "fail_url": "https://shop.example.ma/cmi/fail/",
    }
    values.update(overrides)
    return values


@pytest.fixture
def make_payment(db: None) -> Callable[..., Payment]:
    def make(*, data: dict[str, Any] | None = None, **overrides: Any) -> Payment:
        payment, _ = services.create_payment(
            platform="test", reference="basket-1", order=order(**overrides), data=data
        )
        return payment

    return make


@pytest.fixture
def payment(make_payment: Callable[..., Payment]) -> Payment:
    return make_payment()


def callback_for(payment: Payment, **kwargs: Any) -> dict[str, str]:
    """A callback signed with the test store key for ``payment``."""
    kwargs.setdefault("amount", payment.amount)
    kwargs.setdefault("oid", payment.oid)
    kwargs.setdefault("request_fields", payment.request_fields)
    return make_callback(STORE_KEY, **kwargs)


def post_callback(client: Client, fields: dict[str, str] | bytes) -> Any:
    body = fields if isinstance(fields, bytes) else urlencode(fields)
    return client.post(
        "/cmi/callback/", data=body, content_type="application/x-www-form-urlencoded"
    )


@pytest.fixture
def csrf_client() -> Client:
    """A client that enforces CSRF like a browser-less CMI would meet it."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, callback_timeout=2.0) as running:
        yield running


@pytest.fixture
def sandbox_settings(settings: Any, sandbox: Sandbox) -> Sandbox:
    """``CMI_PAYMENTS["default"]`` pointing at the emulator with its API user."""
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url, capture_mode="manual")
    return sandbox


def sandbox_payments(base_url: str, capture_mode: str = "auto") -> dict[str, Any]:
    """``CMI_PAYMENTS`` for the emulator at ``base_url``: its merchant and API user."""
    return {
        "default": {
            "CLIENT_ID": DEFAULT_MERCHANT.client_id,
            "STORE_KEY": DEFAULT_MERCHANT.store_key,
            "API_USERNAME": DEFAULT_MERCHANT.api_username,
            "API_PASSWORD": DEFAULT_MERCHANT.api_password,
            "BASE_URL": base_url,
            "CAPTURE_MODE": capture_mode,
        }
    }


def _seeded(make_payment: Callable[..., Payment], sandbox: Sandbox, *, captured: bool) -> Payment:
    """A payment authorised (or captured) in the shop's database, PRE (or POST) at the
    emulator, for the money-moving tests (``test_money_once``, ``test_money_review*``)."""
    from tests.adapters.django.test_money_once import AMOUNT, seed_order

    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(
        state="captured" if captured else "authorised",
        authorised_amount=AMOUNT,
        captured_amount=AMOUNT if captured else Decimal(0),
    )
    payment.refresh_from_db()
    seed_order(sandbox, payment.oid, captured=captured)
    return payment


@pytest.fixture
def authorised(sandbox_settings: Sandbox, make_payment: Callable[..., Payment]) -> Payment:
    """A payment authorised in the shop's database and PRE at the emulator."""
    return _seeded(make_payment, sandbox_settings, captured=False)


@pytest.fixture
def captured(sandbox_settings: Sandbox, make_payment: Callable[..., Payment]) -> Payment:
    """A payment captured in the shop's database and POST at the emulator."""
    return _seeded(make_payment, sandbox_settings, captured=True)


def late_refund_client(meanwhile: Callable[[Decimal], object] | None = None) -> type[CMIClient]:
    """A :class:`CMIClient` whose first refund outlives its deadline: before it reaches
    CMI, a refresh has settled the pending refund ``failed`` (CMI's history had no trace
    of it yet), and ``meanwhile(amount)`` runs (the same request sent again, say). CMI
    then makes the refund and answers. Later refunds are plain calls."""
    first = [True]

    class Late(CMIClient):
        def refund(self, oid: str, amount: Decimal, currency: Any = None) -> Any:
            if first[0]:
                first[0] = False
                Operation.objects.filter(kind="refund", state=Operation.PENDING).update(
                    state=Operation.FAILED, error="settled from CMI's order history: no trace"
                )
                if meanwhile is not None:
                    meanwhile(amount)
            return super().refund(oid, amount, currency)

    return Late


def authorised_at_cmi(
    sandbox: Sandbox, *, platform: str, reference: str, data: dict[str, Any] | None = None
) -> Payment:
    """A ``platform`` payment authorised in the shop (AMOUNT) and PRE at the emulator."""
    from tests.adapters.django.test_money_once import AMOUNT, seed_order

    payment, _ = services.create_payment(
        platform=platform,
        reference=reference,
        order={
            "amount": AMOUNT,
            "email": "a@example.ma",
            "billing_name": "A",
            "ok_url": "https://x.example.ma/ok",
            "fail_url": "https://x.example.ma/fail",
            "callback_url": "https://x.example.ma/cb",
        },
        data=data,
    )
    Payment.objects.filter(pk=payment.pk).update(state="authorised", authorised_amount=AMOUNT)
    seed_order(sandbox, payment.oid, captured=False)
    payment.refresh_from_db()
    return payment


def untouched(payment: Payment, sandbox: Sandbox) -> bool:
    """Still authorised, no operation recorded, nothing sent to CMI after the PreAuth."""
    from tests.adapters.django.test_money_once import ledger

    payment.refresh_from_db()
    return (
        payment.state == "authorised"
        and not Operation.objects.filter(payment=payment).exists()
        and ledger(sandbox, payment.oid) == ["PreAuth"]
    )
