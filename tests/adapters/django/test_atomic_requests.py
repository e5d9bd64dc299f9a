"""Under ``ATOMIC_REQUESTS`` a view runs inside one transaction: a CMI call made there
would run under the database's write lock (SQLite's IMMEDIATE) and before the intent it
follows is committed. The views that may call CMI opt out of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import resolve

from cmi_core import CMIClient, PaymentState
from cmi_core.sandbox import Sandbox

from .conftest import post_callback
from .test_binding import _loose, _pay_on_emulator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def atomic_requests() -> Iterator[None]:
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        yield
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False


def non_atomic(path: str) -> bool:
    return "default" in getattr(resolve(path).func, "_non_atomic_requests", set())


@pytest.mark.parametrize("path", ["/cmi/callback/", "/cmi/ok/", "/cmi/fail/"])
def test_the_views_that_may_call_cmi_opt_out_of_atomic_requests(path: str) -> None:
    assert non_atomic(path)


def test_a_callback_confirmed_through_cmi_calls_it_outside_any_transaction(
    atomic_requests: None,
    sandbox_settings: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment = _pay_on_emulator(sandbox_settings)
    seen: list[bool] = []
    status = CMIClient.status

    def spy(self: CMIClient, *args: Any, **kwargs: Any) -> Any:
        seen.append(connection.in_atomic_block)
        return status(self, *args, **kwargs)

    monkeypatch.setattr(CMIClient, "status", spy)
    assert post_callback(Client(), _loose(payment)).content == b"APPROVED"
    assert seen == [False]
    payment.refresh_from_db()
    assert payment.state == PaymentState.AUTHORISED
