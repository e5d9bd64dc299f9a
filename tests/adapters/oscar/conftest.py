"""Fixtures of the Oscar adapter's tests: a catalogue, shoppers, staff, the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from cmi_core.sandbox import Sandbox
from tests.adapters.dbsettings import using_postgres
from tests.adapters.django.conftest import sandbox_payments
from tests.adapters.oscar.support import create_country, create_product

postgres_only = pytest.mark.skipif(
    not using_postgres(), reason="needs PostgreSQL (runs in dev.py's PostgreSQL pass)"
)


@pytest.fixture
def product(db: None) -> Any:
    create_country()
    return create_product()


@pytest.fixture
def shopper() -> Client:
    return Client()


@pytest.fixture
def staff(db: None, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("staff", "staff@example.ma", "pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """One emulator per test: Oscar's order numbers (hence oids) repeat between tests."""
    with Sandbox(port=0, callback_timeout=5.0) as running:
        yield running


@pytest.fixture
def sandbox_settings(settings: Any, sandbox: Sandbox) -> Sandbox:
    """``CMI_PAYMENTS["default"]`` pointing at the emulator, with its API user."""
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url)
    return sandbox
