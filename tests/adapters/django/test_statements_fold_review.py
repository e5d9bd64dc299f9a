"""Review of the callback transaction's folded ``BEGIN`` and ``COMMIT``
(:func:`cmi_django.statements.atomic`, issue 16 goal 3): what the folds could commit that
Django would not, or answer CMI without committing.
"""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import CallbackLog, Payment
from django.db import IntegrityError, connection

from .conftest import callback_for, postgres_only
from .testapp.hooks import RecordingHook
from .testapp.models import HookCall

pytestmark = [pytest.mark.django_db(transaction=True)]


def in_step() -> None:
    """psycopg's autocommit is Django's, and no transaction is left open (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    from psycopg import pq

    raw = connection.connection
    assert raw.autocommit is connection.get_autocommit() is True
    assert raw.pgconn.transaction_status == pq.TransactionStatus.IDLE


def test_a_hook_catching_its_own_failed_save_makes_the_callback_fail(
    payment: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's hook catches the IntegrityError of its own ``save`` (no atomic
    block of its own): Django marks the transaction for rollback. The callback's log
    written after it must fail as the ORM fails it (TransactionManagementError), so the
    callback answers FAILURE: never ``ACTION=POSTAUTH`` with nothing committed (CMI
    would capture a payment the shop has no record of)."""
    taken = HookCall.objects.create(oid="taken", method="x")

    def on_captured(self: RecordingHook, change: Any, effect: Any) -> None:
        try:
            HookCall.objects.create(pk=taken.pk, oid=change.payment.oid, method="captured")
        except IntegrityError:
            pass  # a hook that carries on

    monkeypatch.setattr(RecordingHook, "on_captured", on_captured)
    outcome = services.handle_callback(callback_for(payment))
    fresh = Payment.objects.get(pk=payment.pk)
    logs = list(CallbackLog.objects.filter(oid=payment.oid).values_list("outcome", "reply"))
    assert outcome.reply == "FAILURE", (outcome.reply, fresh.state, logs)
    assert fresh.state == payment.state
    assert logs == [("error", "FAILURE")]
    in_step()
