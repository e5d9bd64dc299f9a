"""Secrets never reach a log line, an error message or a stored record.

Hostile and failing exchanges are driven through the shared layer with every logger at
DEBUG; the store key and the API password must appear nowhere in what was logged, raised
or saved.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import CallbackLog, Operation, Payment

from cmi_core import APIError, TransitionError
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.testing import make_callback, sign, tamper

from .test_binding import _pay_on_emulator

pytestmark = pytest.mark.django_db

SECRETS = (DEFAULT_MERCHANT.store_key, DEFAULT_MERCHANT.api_password)


def test_no_secret_in_logs_errors_or_records(
    sandbox_settings: Sandbox, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raised: list[str] = []
    payment = _pay_on_emulator(sandbox_settings)
    genuine = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=payment.oid,
        amount=payment.amount,
        request_fields=payment.request_fields,
    )
    # Forged, renamed, tampered, loose and unreadable results.
    services.handle_callback(tamper(genuine, amount="1.00"))
    services.handle_callback(sign({**genuine, "aa1": "x"}, DEFAULT_MERCHANT.store_key))
    services.handle_callback(sign({**genuine, "DIMCRITERIA1": "cmi-1"}, "wrong key"))
    services.handle_callback_body(b"\xff\xfe" * 10)
    services.handle_return(tamper(genuine, oid="other"), kind="ok")
    services.handle_callback(genuine)
    payment.refresh_from_db()
    # CMI refusing an operation, then a wrong API password.
    try:
        services.refund(payment, Decimal("1000.00"), user="staff", key="too-much")
    except (APIError, TransitionError) as exc:
        raised.append(str(exc))
    config = settings.CMI_PAYMENTS["default"]
    settings.CMI_PAYMENTS = {"default": {**config, "API_PASSWORD": "Wrong-Password-123"}}
    try:
        services.capture(payment, user="staff", key="bad-password")
    except (APIError, TransitionError) as exc:
        raised.append(str(exc))
    settings.CMI_PAYMENTS = {"default": config}
    stored = [
        *(str(row) for row in CallbackLog.objects.values()),
        *(str(row) for row in Operation.objects.values()),
        *(str(row) for row in Payment.objects.values()),
    ]
    assert raised, "the refused operations must have raised"
    everything = "\n".join([caplog.text, *raised, *stored])
    for secret in (*SECRETS, "Wrong-Password-123"):
        assert secret not in everything
