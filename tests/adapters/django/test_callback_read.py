"""The callback reads its payment once, locked, in its own transaction (issue 16, goal 3).

Before, the payment was read unlocked to choose its store key, then read again under
``select_for_update``. Now one locked read serves the hash check and the decision; only an
approval that needs CMI's confirmation leaves the transaction (CMI is never asked under a
lock) and is then decided on the row read again once CMI answered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import CallbackLog, Payment
from django.db import connection

from cmi_core import CMIClient, PaymentState
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.testing import make_callback
from tests.adapters.django.testapp.models import HookCall

from .conftest import STORE_KEY, callback_for
from .test_binding import _loose, _pay_on_emulator

pytestmark = pytest.mark.django_db(transaction=True)


def payment_reads(run: Callable[[], Any]) -> list[tuple[str, bool]]:
    """The statements reading the payment table while ``run()`` ran, each with whether it
    ran inside a transaction."""
    seen: list[tuple[str, bool]] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        run()
    table = Payment._meta.db_table
    # on PostgreSQL the transaction's BEGIN goes with its first statement
    statements = [(re.sub(r"^BEGIN[^;]*;\s*", "", sql.lstrip()), atomic) for sql, atomic in seen]
    return [
        (sql, atomic)
        for sql, atomic in statements
        if sql.upper().startswith("SELECT") and f'FROM "{table}"' in sql
    ]


def test_a_callback_reads_its_payment_once_locked_in_its_transaction(
    make_payment: Callable[..., Payment],
) -> None:
    payment = make_payment()
    outcome: list[Any] = []
    reads = payment_reads(lambda: outcome.append(services.handle_callback(callback_for(payment))))
    assert outcome[0].reply in ("ACTION=POSTAUTH", "APPROVED")
    assert len(reads) == 1, reads  # before: an unlocked read, then a locked one
    sql, atomic = reads[0]
    assert atomic
    if connection.vendor == "postgresql":
        assert "FOR UPDATE" in sql
    payment.refresh_from_db()
    assert PaymentState(payment.state).is_paid


def test_a_forged_callback_reads_once_and_changes_nothing(
    make_payment: Callable[..., Payment],
) -> None:
    """A wrong hash: read (locked), checked, logged; nothing else happens to the payment."""
    payment = make_payment()
    before = payment.state
    forged = make_callback("NOT-THE-STORE-KEY", oid=payment.oid, amount=payment.amount)
    outcome: list[Any] = []
    reads = payment_reads(lambda: outcome.append(services.handle_callback(forged)))
    assert outcome[0].reply == "FAILURE"
    assert not outcome[0].verified
    assert len(reads) == 1
    payment.refresh_from_db()
    assert payment.state == before
    assert PaymentState(payment.state).is_pending
    assert not HookCall.objects.exists()
    log = CallbackLog.objects.get()
    assert (log.payment_id, log.verified, log.reply) == (payment.pk, False, "FAILURE")
    assert STORE_KEY not in str(log.fields) + log.error


def test_a_loose_approval_is_decided_on_the_row_read_after_cmi_answered(
    sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While CMI is asked (no lock held), the strictly bound callback of the same payment
    arrives and authorises it. The loose approval is then decided on the row as it is
    now: a duplicate, so the platform hears of one authorisation, not two (deciding on the
    row read before CMI was asked would authorise it again)."""
    payment = _pay_on_emulator(sandbox_settings)
    strict = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=payment.oid,
        amount=payment.amount,
        request_fields=payment.request_fields,
    )
    status = CMIClient.status
    meanwhile: list[str] = []

    def slow_cmi(self: CMIClient, *args: Any, **kwargs: Any) -> Any:
        assert not connection.in_atomic_block  # CMI is never asked under the lock
        meanwhile.append(services.handle_callback(strict).reply)
        return status(self, *args, **kwargs)

    monkeypatch.setattr(CMIClient, "status", slow_cmi)
    outcome = services.handle_callback(_loose(payment))
    assert meanwhile == ["APPROVED"]  # manual capture mode in sandbox_settings
    assert outcome.reply == "APPROVED"
    payment.refresh_from_db()
    assert payment.state == PaymentState.AUTHORISED
    calls = list(HookCall.objects.filter(oid=payment.oid).values_list("method", flat=True))
    assert calls.count("authorised") == 1, calls
