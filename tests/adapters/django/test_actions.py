"""cmi_django.actions: the staff actions both dashboards (Oscar, Wagtail) run."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django.actions import allowed_actions, staff_action
from cmi_django.models import Operation, Payment

from cmi_core import PaymentState, PaymentStatus
from cmi_core.sandbox import Sandbox
from tests.adapters.django.testapp.hooks import RecordingHook

from .conftest import AMOUNT
from .test_operations import authorised, cmi_transactions, merchant  # noqa: F401

pytestmark = pytest.mark.django_db


def _with_status(payment: Payment, state: PaymentState, **amounts: Decimal) -> Payment:
    payment.set_status(PaymentStatus(state, AMOUNT, **amounts))
    payment.save()
    return payment


@pytest.mark.parametrize(
    ("state", "amounts", "expected"),
    [
        (PaymentState.REDIRECTED, {}, {"refresh"}),
        (PaymentState.AUTHORISED, {"authorised": AMOUNT}, {"capture", "void", "refresh"}),
        (
            PaymentState.CAPTURED,
            {"authorised": AMOUNT, "captured": AMOUNT},
            {"void", "refund", "refresh"},
        ),
        (
            PaymentState.PARTIALLY_REFUNDED,
            {"authorised": AMOUNT, "captured": AMOUNT, "refunded": Decimal("1")},
            {"refund", "refresh"},
        ),
        (
            PaymentState.REFUNDED,
            {"authorised": AMOUNT, "captured": AMOUNT, "refunded": AMOUNT},
            {"refresh"},
        ),
        (PaymentState.VOIDED, {"authorised": AMOUNT}, {"refresh"}),
    ],
)
def test_allowed_actions_follow_the_state_machine(
    payment: Payment, state: PaymentState, amounts: dict[str, Decimal], expected: set[str]
) -> None:
    assert allowed_actions(_with_status(payment, state, **amounts)) == expected


def test_refund_sent_twice_with_one_key_refunds_once(
    authorised: Payment,  # noqa: F811
    sandbox: Sandbox,
) -> None:
    assert staff_action(authorised, "capture", "", user="staff", key="capture-k1").ok
    first = staff_action(authorised, "refund", "20,50", user="staff", key="refund-k1")
    again = staff_action(authorised, "refund", "20,50", user="staff", key="refund-k1")
    assert first.ok, first.message
    assert again.ok, again.message
    assert "already done" in again.message
    assert cmi_transactions(sandbox, authorised).count("Credit") == 1
    authorised.refresh_from_db()
    assert authorised.refunded_amount == Decimal("20.50")
    assert Operation.objects.filter(payment=authorised, kind="refund").count() == 1
    # an empty amount refunds nothing; another form (another key) is another refund
    empty = staff_action(authorised, "refund", "", user="staff", key="refund-k2")
    assert (empty.ok, empty.message) == (False, "Enter the amount to refund.")
    rest_amount = str(authorised.status.refundable)
    rest = staff_action(authorised, "refund", rest_amount, user="staff", key="refund-k2")
    assert rest.ok, rest.message
    assert authorised.state == PaymentState.REFUNDED


def test_messages_are_staff_safe(authorised: Payment, settings: Any) -> None:  # noqa: F811
    assert staff_action(authorised, "explode", "").message == "Unknown action."
    bad = staff_action(authorised, "capture", "1e3")
    assert (bad.ok, "valid amount" in bad.message) == (False, True)
    too_precise = staff_action(authorised, "capture", "1.2345")
    assert not too_precise.ok
    refused = staff_action(authorised, "refund", "1.00")
    assert (refused.ok, refused.message.startswith("Not possible now")) == (False, True)
    entry = settings.CMI_PAYMENTS["default"]
    settings.CMI_PAYMENTS = {"default": {**entry, "API_PASSWORD": "wrong-password"}}
    cmi = staff_action(authorised, "capture", "")
    assert (cmi.ok, cmi.message.startswith("CMI refused")) == (False, True)
    assert "wrong-password" not in cmi.message
    assert authorised.state == PaymentState.AUTHORISED


def test_hook_failure_after_cmi_accepted_is_reported_without_details(
    authorised: Payment,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any, change: Any, effect: Any) -> None:
        raise RuntimeError("secret-ish internals")

    monkeypatch.setattr(RecordingHook, "on_captured", broken)
    result = staff_action(authorised, "capture", "", user="staff", key="k")
    assert not result.ok
    assert "CMI accepted the capture" in result.message
    assert "RuntimeError" not in result.message  # no exception class names for staff
    assert "secret-ish" not in result.message
    assert authorised.state == PaymentState.CAPTURED  # CMI's change is real and recorded


def test_confirmation_keeps_oid_and_amount_whole_in_arabic(payment: Payment) -> None:
    """Right to left, the oid and the amount are isolated (FSI...PDI) inside the sentence;
    left to right, the text carries no invisible character (issue 13)."""
    from cmi_django.actions import confirmation_text
    from django.utils import translation

    _with_status(payment, PaymentState.AUTHORISED, authorised=AMOUNT)
    with translation.override("ar"):
        arabic = confirmation_text(payment, "void")
    assert f"\u2068{payment.oid}\u2069" in arabic
    assert "\u2068" + f"{AMOUNT:.2f}" in arabic  # the amount starts its own isolate
    with translation.override("en"):
        english = confirmation_text(payment, "void")
    assert payment.oid in english
    assert "\u2068" not in english
    assert "\u2069" not in english


def test_bdi_filter_wraps_and_escapes() -> None:
    from cmi_django.templatetags.cmi_money import bdi

    assert bdi("100002-1") == '<bdi style="white-space: nowrap">100002-1</bdi>'
    assert bdi("<b>") == '<bdi style="white-space: nowrap">&lt;b&gt;</bdi>'
    assert bdi("") == ""
