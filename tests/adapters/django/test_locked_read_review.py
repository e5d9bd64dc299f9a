"""Adversarial review of the callback's single locked read (issue 16, goal 3): config
resolvers (joined or not) that fail, and hostile oids, on every platform's path.

A callback whose config cannot be built is answered FAILURE, logged, and changes nothing;
the error names no secret; never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cmi_django import config as config_module
from cmi_django import statements
from cmi_django.config import JoinedConfig, config_from_mapping, register_config_resolver
from cmi_django.models import CallbackLog, Payment
from django.core.exceptions import ImproperlyConfigured
from django.db.models import TextField, Value
from django.test import Client

from cmi_core import CMIConfig, PaymentState
from tests.adapters.django.testapp.models import HookCall

from .conftest import STORE_KEY, callback_for, post_callback

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "RESOLVED-STORE-KEY-never-shown-77"


@pytest.fixture
def resolvers() -> Iterator[None]:
    """Restore the registries the tests add to."""
    saved = dict(config_module._RESOLVERS), dict(config_module._JOINED)
    yield
    config_module._RESOLVERS.clear()
    config_module._RESOLVERS.update(saved[0])
    config_module._JOINED.clear()
    config_module._JOINED.update(saved[1])
    statements.bump()  # the callback's compiled read joined what the test registered


def _unchanged_failure(client: Client, payment: Payment, fields: dict[str, str]) -> CallbackLog:
    before = payment.state
    response = post_callback(client, fields)
    assert response.status_code == 200
    assert response.content.decode() == "FAILURE"
    payment.refresh_from_db()
    assert payment.state == before
    assert PaymentState(payment.state).is_pending
    assert not HookCall.objects.exists()
    log = CallbackLog.objects.get()
    assert log.reply == "FAILURE"
    assert log.oid == payment.oid
    assert SECRET not in log.error + str(log.fields)
    assert STORE_KEY not in log.error
    return log


def _refusing(rest: str) -> CMIConfig:
    raise ImproperlyConfigured(f"shop:{rest}: no such configuration")


def test_a_resolver_refusing_the_key_answers_failure_logged(
    client: Client, make_payment: Callable[..., Payment], resolvers: None
) -> None:
    """Oscar's and Wagtail's resolvers are not joined: called under the lock, they raise."""
    register_config_resolver("shop", _refusing)
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(config_key="shop:7")
    log = _unchanged_failure(client, payment, callback_for(payment))
    assert "shop:7: no such configuration" in log.error


def test_a_joined_config_refusing_its_row_answers_failure_logged(
    client: Client, make_payment: Callable[..., Payment], resolvers: None
) -> None:
    """A joined row that is NULL (no such row): build raises as the resolver would."""

    def build(rest: str, value: Any) -> CMIConfig:
        assert value is None
        raise ImproperlyConfigured(f"shop:{rest}: no such configuration")

    joined = JoinedConfig(expression=lambda alias: Value(None, TextField()), build=build)
    register_config_resolver("shop", _refusing, joined=joined)
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(config_key="shop:7")
    _unchanged_failure(client, payment, callback_for(payment))


def test_a_joined_config_that_crashes_answers_failure_without_its_row(
    client: Client, make_payment: Callable[..., Payment], resolvers: None
) -> None:
    """Not an ImproperlyConfigured (a bug, a corrupt row): still FAILURE, logged, and the
    row read with the payment (secrets in it) is not what the log shows."""

    def build(rest: str, value: Any) -> CMIConfig:
        raise ValueError("corrupt row")

    row = Value('{"store_key": "' + SECRET + '"}', TextField())
    register_config_resolver("shop", _refusing, joined=JoinedConfig(lambda alias: row, build))
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(config_key="shop:7")
    log = _unchanged_failure(client, payment, callback_for(payment))
    assert log.payment_id == payment.pk  # shown with the payment it names, for staff
    assert log.outcome == "error"


def test_a_joined_config_not_writable_here_falls_back_to_the_resolver(
    client: Client, make_payment: Callable[..., Payment], resolvers: None
) -> None:
    """``expression(alias)`` None (another database): the resolver's own query decides."""
    entry = {"CLIENT_ID": "600000001", "STORE_KEY": STORE_KEY, "CAPTURE_MODE": "auto"}

    def resolve(rest: str) -> CMIConfig:
        return config_from_mapping(entry, setting=f"shop:{rest}")

    def build(rest: str, value: Any) -> CMIConfig:
        raise AssertionError("no row was read with the payment")

    register_config_resolver("shop", resolve, joined=JoinedConfig(lambda alias: None, build))
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(config_key="shop:7")
    response = post_callback(client, callback_for(payment))
    assert response.status_code == 200
    assert response.content.decode() == "ACTION=POSTAUTH"
    payment.refresh_from_db()
    assert PaymentState(payment.state).is_paid


@pytest.mark.parametrize(
    "oid",
    [
        "1' OR '1'='1",
        "saleor:1 OR 1=1",
        "x%' --",
        "\u0661\u0662\u0663",  # Arabic-Indic digits
        "A" * 65,
        "oid\x00",
        "",
    ],
)
def test_a_hostile_oid_is_an_unknown_order(
    client: Client, make_payment: Callable[..., Payment], oid: str
) -> None:
    payment = make_payment()
    fields = callback_for(payment, oid=oid)
    response = post_callback(client, fields)
    assert response.status_code == 200
    assert response.content.decode() == "FAILURE"
    payment.refresh_from_db()
    assert PaymentState(payment.state).is_pending
    log = CallbackLog.objects.get()
    assert (log.payment_id, log.reply, log.verified) == (None, "FAILURE", False)
