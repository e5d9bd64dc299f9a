"""The hook contract (issue #14): one PaymentChange per change, who started it, and
handlers whose names are checked when the hook class is created."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import hooks, services, signals
from cmi_django.hooks import PaymentChange, PaymentHook
from cmi_django.models import Payment

from cmi_core import PaymentState
from cmi_core.effects import Effect, EffectKind
from cmi_core.sandbox import Sandbox
from tests.sandbox.support import Merchant

from .conftest import AMOUNT, callback_for
from .test_operations import authorised, merchant, pay_on_emulator  # noqa: F401

pytestmark = pytest.mark.django_db


class Seen(PaymentHook):
    """Keeps every change it is handed, then lets the default dispatch run."""

    def __init__(self) -> None:
        self.changes: list[PaymentChange] = []
        self.handled: list[tuple[str, Decimal | None]] = []

    def handle(self, change: PaymentChange) -> None:
        self.changes.append(change)
        super().handle(change)

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        self.handled.append(("captured", effect.amount))


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    hook = Seen()
    monkeypatch.setitem(hooks._HOOKS, "test", hook)
    return hook


@pytest.fixture
def changed() -> Iterator[list[PaymentChange]]:
    found: list[PaymentChange] = []

    def receive(sender: Any, change: PaymentChange, **kwargs: Any) -> None:
        found.append(change)

    signals.payment_changed.connect(receive)
    yield found
    signals.payment_changed.disconnect(receive)


def kinds(change: PaymentChange) -> list[str]:
    return [e.kind.value for e in change.effects]


def test_auto_capture_approval_is_one_change(
    seen: Seen, changed: list[PaymentChange], payment: Payment
) -> None:
    outcome = services.handle_callback(callback_for(payment, trans_id="T-1"))
    assert outcome.reply == "ACTION=POSTAUTH"
    [change] = seen.changes
    assert kinds(change) == ["authorised", "captured"]
    assert (change.source, change.operation) == ("callback", None)
    assert change.result is not None
    assert change.result.trans_id == "T-1"
    assert (change.before.state, change.after.state) == (
        PaymentState.REDIRECTED,
        PaymentState.CAPTURED,
    )
    assert change.payment.pk == payment.pk
    assert seen.handled == [("captured", AMOUNT)]  # the default dispatch reached on_captured
    assert changed == [change]  # payment_changed: once, with the same value
    # the same callback again: nothing changes, nothing is handed over
    assert services.handle_callback(callback_for(payment, trans_id="T-1")).reply == (
        "ACTION=POSTAUTH"
    )
    assert len(seen.changes) == 1


def test_ok_return_before_the_callback_is_a_return_change(seen: Seen, payment: Payment) -> None:
    outcome = services.handle_return(callback_for(payment, trans_id="T-1"), kind="ok")
    assert outcome.approved
    [change] = seen.changes
    assert (change.source, kinds(change)) == ("return", ["authorised"])


def test_staff_and_platform_operations_say_who_started_them(
    seen: Seen,
    authorised: Payment,  # noqa: F811
    sandbox: Sandbox,
) -> None:
    assert [c.source for c in seen.changes] == ["callback"]  # the fixture's approval
    seen.changes.clear()
    operation = services.capture(authorised, Decimal("40.00"), user="staff@shop")
    [change] = seen.changes
    assert (change.source, kinds(change)) == ("staff", ["captured", "released"])
    assert change.operation is not None
    assert change.operation.pk == operation.pk
    assert change.effect(EffectKind.RELEASED) == Effect(EffectKind.RELEASED, AMOUNT - 40)
    services.refund(authorised, Decimal("10.00"), user="saleor", source="platform")
    assert (seen.changes[-1].source, kinds(seen.changes[-1])) == ("platform", ["refunded"])
    services.flag(authorised, "look")
    assert (seen.changes[-1].source, kinds(seen.changes[-1])) == ("staff", ["flagged"])
    count = len(seen.changes)
    services.refresh(authorised, user="staff")  # CMI agrees on the amounts: no effect
    assert authorised.state == PaymentState.PARTIALLY_REFUNDED
    assert len(seen.changes) == count


def test_an_approval_learned_from_cmi_is_a_sync_change(
    seen: Seen,
    sandbox_settings: Sandbox,
    merchant: Merchant,  # noqa: F811
) -> None:
    payment = pay_on_emulator(sandbox_settings, merchant.base_url)  # no callback fed
    assert payment.state == PaymentState.REDIRECTED
    services.refresh(payment, user="staff")
    [change] = seen.changes
    assert (change.source, kinds(change)) == ("sync", ["authorised"])
    assert change.operation is not None
    assert change.operation.kind == "status"
    assert change.result is not None  # the approval CMI's status answer stands for
    assert change.result.oid == payment.oid


def test_a_misspelt_handler_fails_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="on_autorised handles no effect"):

        class Misspelt(PaymentHook):
            def on_autorised(self, change: PaymentChange, effect: Effect) -> None: ...


@pytest.mark.parametrize(
    "name", ["authorised", "captured", "declined", "refunded", "voided", "needs_attention"]
)
def test_an_old_style_method_fails_when_the_class_is_made(name: str) -> None:
    with pytest.raises(TypeError, match="old hook contract"):
        type("Old", (PaymentHook,), {name: lambda self, payment, other=None: None})


def test_every_effect_kind_has_a_handler() -> None:
    assert {f"on_{k.value}" for k in EffectKind} == PaymentHook.handlers
    assert all(callable(getattr(PaymentHook, name)) for name in PaymentHook.handlers)
