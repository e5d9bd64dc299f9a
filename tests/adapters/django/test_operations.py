"""Staff operations and reconciliation against the real emulator (``cmi_core.sandbox``).

The shopper pays on the emulator's card form over HTTP; the emulator's callback goes to a
recording server on loopback (answering ``APPROVED``, so CMI keeps the order PRE) and the
test hands what it recorded to ``handle_callback``. A last test lets the emulator call
Django's own callback view through ``live_server``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import Operation, Payment
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from cmi_core import APIError, PaymentState, TransitionError
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.testing import make_callback
from tests.adapters.django.testapp.models import HookCall
from tests.sandbox.support import Browser, Merchant, merchant_handler

from .conftest import AMOUNT, order

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    shop = Merchant(reply="APPROVED")
    server = ThreadingHTTPServer(("127.0.0.1", 0), merchant_handler(shop))
    server.daemon_threads = True
    shop.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()


def pay_on_emulator(
    sandbox: Sandbox, urls: str, *, feed: Merchant | None = None, callback: str = "/callback"
) -> Payment:
    """Create a payment, pay it on the emulator; feed the recorded callback to Django."""
    payment, request = services.create_payment(
        platform="test",
        reference="basket-7",
        order=order(ok_url=f"{urls}/ok", fail_url=f"{urls}/fail", callback_url=f"{urls}{callback}"),
    )
    browser = Browser(sandbox)
    assert browser.open(request.fields).status_code == 200
    assert browser.pay().status_code == 200
    sandbox.wait_for_callbacks()
    if feed is not None:
        (received,) = feed.wait_for("/callback", 1)
        assert services.handle_callback(received.values).reply == "APPROVED"
        payment.refresh_from_db()
    return payment


@pytest.fixture
def authorised(sandbox_settings: Sandbox, merchant: Merchant) -> Payment:
    payment = pay_on_emulator(sandbox_settings, merchant.base_url, feed=merchant)
    assert payment.state == PaymentState.AUTHORISED
    assert sandbox_settings.order(payment.oid).state == "PRE"
    return payment


def cmi_transactions(sandbox: Sandbox, payment: Payment) -> list[str]:
    row = sandbox.order(payment.oid)
    assert row is not None
    return [t.type for t in sandbox.store.transactions(row.id)]


def hook_calls(payment: Payment) -> list[tuple[str, Decimal | None]]:
    return list(HookCall.objects.filter(oid=payment.oid).values_list("method", "amount"))


def test_capture(authorised: Payment, sandbox: Sandbox) -> None:
    operation = services.capture(authorised, user="staff@shop")
    assert (operation.kind, operation.succeeded, operation.amount) == ("capture", True, AMOUNT)
    assert operation.response["approved"] is True
    assert "sandbox-api-password" not in str(operation.response)
    assert authorised.state == PaymentState.CAPTURED  # the caller's instance is refreshed
    assert authorised.captured_amount == AMOUNT
    assert sandbox.order(authorised.oid).state == "POST"
    assert hook_calls(authorised)[-1] == ("captured", AMOUNT)


def test_partial_refund_then_refund_beyond_refused_before_cmi(
    authorised: Payment, sandbox: Sandbox
) -> None:
    services.capture(authorised)
    operation = services.refund(authorised, Decimal("20.50"), user="staff@shop")
    assert (operation.succeeded, operation.amount) == (True, Decimal("20.50"))
    assert authorised.state == PaymentState.PARTIALLY_REFUNDED
    assert authorised.refunded_amount == Decimal("20.50")
    cmi_row = sandbox.order(authorised.oid)
    assert (cmi_row.state, cmi_row.refunded) == ("RFND", Decimal("20.50"))
    assert hook_calls(authorised)[-1] == ("refunded", Decimal("20.50"))
    before = cmi_transactions(sandbox, authorised)
    with pytest.raises(TransitionError, match="exceeds"):
        services.refund(authorised, Decimal("100.01"))
    assert cmi_transactions(sandbox, authorised) == before
    assert Operation.objects.filter(payment=authorised).count() == 2
    authorised.refresh_from_db()
    assert authorised.refunded_amount == Decimal("20.50")


def test_illegal_move_sends_nothing(authorised: Payment, sandbox: Sandbox) -> None:
    with pytest.raises(TransitionError):
        services.refund(authorised, Decimal("1.00"))  # nothing captured yet
    assert cmi_transactions(sandbox, authorised) == ["PreAuth"]
    assert not Operation.objects.exists()


def test_void(authorised: Payment, sandbox: Sandbox) -> None:
    operation = services.void(authorised, user="staff@shop")
    assert (operation.kind, operation.succeeded) == ("void", True)
    assert authorised.state == PaymentState.VOIDED
    assert sandbox.order(authorised.oid).state == "VOID"
    assert hook_calls(authorised)[-1] == ("voided", None)
    with pytest.raises(TransitionError):
        services.capture(authorised)


def test_idempotency_key_calls_cmi_once(authorised: Payment, sandbox: Sandbox) -> None:
    services.capture(authorised)
    one = services.refund(authorised, Decimal("10"), key="saleor-refund-1")
    again = services.refund(authorised, Decimal("10"), key="saleor-refund-1")
    assert again.pk == one.pk
    assert cmi_transactions(sandbox, authorised).count("Credit") == 1
    assert authorised.refunded_amount == Decimal("10")
    other = services.refund(authorised, Decimal("10"), key="saleor-refund-2")
    assert other.pk != one.pk
    assert cmi_transactions(sandbox, authorised).count("Credit") == 2
    assert Operation.objects.filter(payment=authorised, kind="refund").count() == 2


def test_cmi_refusal_records_failed_operation_and_raises(
    sandbox_settings: Sandbox, make_payment: Callable[..., Payment]
) -> None:
    payment = make_payment()  # never paid: CMI has no such order
    Payment.objects.filter(pk=payment.pk).update(state="authorised", authorised_amount=AMOUNT)
    payment.refresh_from_db()
    with pytest.raises(APIError) as caught:
        services.capture(payment, key="k")
    operation = Operation.objects.get(payment=payment)
    assert (operation.succeeded, operation.key) == (False, "k")
    assert operation.error == str(caught.value)
    assert "sandbox-api-password" not in str(operation.response) + operation.error
    assert Payment.objects.get(pk=payment.pk).state == PaymentState.AUTHORISED


def test_operations_need_an_api_user(payment: Payment) -> None:
    payment.set_status(payment.status.__class__(PaymentState.AUTHORISED, AMOUNT, AMOUNT))
    payment.save()
    with pytest.raises(ImproperlyConfigured, match="API_USERNAME"):
        services.capture(payment)
    assert not Operation.objects.exists()


def test_refresh_applies_what_cmi_says(sandbox_settings: Sandbox, merchant: Merchant) -> None:
    payment = pay_on_emulator(sandbox_settings, merchant.base_url)  # callback never fed
    assert payment.state == PaymentState.REDIRECTED
    operation = services.refresh(payment, user="staff@shop")
    assert (operation.kind, operation.succeeded) == ("status", True)
    assert operation.response["state"] == "PRE"
    assert payment.state == PaymentState.AUTHORISED
    assert payment.authorised_amount == AMOUNT
    # ORDERSTATUS's TransId is not recorded (the callback's may differ): see
    # approve_without_callback; it is in the operation's response and the hook's result.
    assert (payment.trans_id, payment.capture_mode) == ("", "manual")
    assert operation.response["trans_id"]
    assert payment.auth_code
    assert hook_calls(payment) == [("authorised", AMOUNT)]
    # after a partial refund our row drifts; refresh brings CMI's amounts back (RFND)
    services.capture(payment)
    services.refund(payment, Decimal("0.50"))
    Payment.objects.filter(pk=payment.pk).update(state="captured", refunded_amount=0)
    services.refresh(payment)
    assert (payment.state, payment.refunded_amount) == (
        PaymentState.PARTIALLY_REFUNDED,
        Decimal("0.50"),
    )


def test_refresh_leaves_attention_with_cmi_state(authorised: Payment) -> None:
    services.flag(authorised, "checked by hand")
    assert authorised.state == PaymentState.NEEDS_ATTENTION
    with pytest.raises(TransitionError):
        services.capture(authorised)
    services.refresh(authorised)
    assert (authorised.state, authorised.attention_reason) == (PaymentState.AUTHORISED, "")


def test_reconcile_command(sandbox_settings: Sandbox, merchant: Merchant) -> None:
    paid = pay_on_emulator(sandbox_settings, merchant.base_url)  # callback lost
    abandoned, _ = services.create_payment(platform="test", reference="b2", order=order())
    fresh, _ = services.create_payment(platform="other", reference="b3", order=order())
    Payment.objects.filter(pk__in=[paid.pk, abandoned.pk]).update(
        updated_at=paid.updated_at.replace(year=2020)
    )
    out = StringIO()
    call_command("cmi_reconcile", "--older-than", "10", "--dry-run", stdout=out)
    assert f"{paid.oid}: would move redirected -> authorised" in out.getvalue()
    assert Payment.objects.get(pk=paid.pk).state == PaymentState.REDIRECTED
    out = StringIO()
    call_command("cmi_reconcile", "--older-than", "10", "--platform", "test", stdout=out)
    text = out.getvalue()
    assert "2 payment(s) to check" in text
    assert f"{paid.oid}: moved redirected -> authorised" in text
    assert f"{abandoned.oid}: unchanged (redirected)" in text
    assert fresh.oid not in text
    assert "done: 2 checked, 1 changed, 0 failed" in text
    assert Payment.objects.get(pk=paid.pk).state == PaymentState.AUTHORISED


def test_reconcile_leaves_old_abandoned_payments_alone(
    sandbox_settings: Sandbox, merchant: Merchant
) -> None:
    old, _ = services.create_payment(platform="test", reference="c1", order=order())
    recent, _ = services.create_payment(platform="test", reference="c2", order=order())
    now = timezone.now()
    Payment.objects.filter(pk=old.pk).update(
        created_at=now - timedelta(days=8), updated_at=now - timedelta(days=8)
    )
    Payment.objects.filter(pk=recent.pk).update(updated_at=now - timedelta(hours=1))
    out = StringIO()
    call_command("cmi_reconcile", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "1 payment(s) created more than 7 day(s) ago left alone (--max-age)" in text
    assert f"{recent.oid}: unchanged (redirected)" in text
    assert old.oid not in text
    assert "done: 1 checked, 0 would change, 0 failed" in text
    out = StringIO()
    call_command("cmi_reconcile", "--max-age", "0", stdout=out)
    assert f"{old.oid}: unchanged (redirected)" in out.getvalue()
    assert "done: 2 checked, 0 changed, 0 failed" in out.getvalue()


def test_reconcile_reports_errors(payment: Payment) -> None:
    Payment.objects.filter(pk=payment.pk).update(updated_at=payment.updated_at.replace(year=2020))
    err = StringIO()
    with pytest.raises(CommandError, match="1 payment"):
        call_command("cmi_reconcile", stdout=StringIO(), stderr=err)
    assert "API_USERNAME" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_emulator_calls_django_callback_view(
    sandbox_settings: Sandbox, live_server: Any, settings: Any
) -> None:
    settings.CMI_PAYMENTS = {
        "default": {**settings.CMI_PAYMENTS["default"], "CAPTURE_MODE": "auto"}
    }
    payment = pay_on_emulator(sandbox_settings, live_server.url + "/cmi", callback="/callback/")
    payment.refresh_from_db()
    assert payment.state == PaymentState.CAPTURED
    assert sandbox_settings.order(payment.oid).state == "POST"
    assert [m for m, _ in hook_calls(payment)] == ["authorised", "captured"]


def return_fields(browser: Browser) -> dict[str, str]:
    _, fields = browser.return_form()
    return dict(fields)


@pytest.mark.parametrize("api_works", [True, False], ids=["captured", "capture-fails"])
def test_ok_return_fallback_captures_through_api_after_commit(
    sandbox_settings: Sandbox,
    merchant: Merchant,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    api_works: bool,
) -> None:
    entry = {**settings.CMI_PAYMENTS["default"], "CAPTURE_MODE": "auto"}
    settings.CMI_PAYMENTS = {"default": entry}
    merchant.reply = "FAILURE"  # the callback is "lost": CMI keeps the order PRE
    payment, request = services.create_payment(
        platform="test",
        reference="basket-9",
        order=order(callback_url=f"{merchant.base_url}/callback"),
    )
    browser = Browser(sandbox_settings)
    browser.open(request.fields)
    browser.pay()
    sandbox_settings.wait_for_callbacks()
    if not api_works:
        settings.CMI_PAYMENTS = {"default": {**entry, "API_PASSWORD": "wrong-password"}}
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.handle_return(return_fields(browser), kind="ok")
    assert (outcome.verified, outcome.approved) == (True, True)
    payment.refresh_from_db()
    capture = Operation.objects.get(payment=payment, kind="capture")
    assert payment.capture_mode == "manual"
    if api_works:
        assert (payment.state, payment.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
        assert (capture.succeeded, capture.key) == (True, "okurl-capture")
        assert sandbox_settings.order(payment.oid).state == "POST"
        # the real callback arrives late: APPROVED (never ACTION=POSTAUTH), nothing twice
        (late,) = merchant.wait_for("/callback", 1)
        assert services.handle_callback(late.values).reply == "APPROVED"
        payment.refresh_from_db()
        assert (payment.state, payment.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
        assert Operation.objects.filter(payment=payment, kind="capture").count() == 1
        assert [m for m, _ in hook_calls(payment)] == ["authorised", "captured"]
    else:
        assert payment.state == PaymentState.NEEDS_ATTENTION
        assert "automatic capture" in payment.attention_reason
        assert "wrong-password" not in payment.attention_reason + capture.error
        assert not capture.succeeded
        assert sandbox_settings.order(payment.oid).state == "PRE"


def _auto_with_lost_callback(
    sandbox: Sandbox, merchant: Merchant, settings: Any, **entry: Any
) -> Payment:
    """Auto mode; paid on the emulator; the callback recorded but never fed (CMI: PRE)."""
    settings.CMI_PAYMENTS = {
        "default": {**settings.CMI_PAYMENTS["default"], "CAPTURE_MODE": "auto", **entry}
    }
    payment = pay_on_emulator(sandbox, merchant.base_url)
    assert (payment.state, payment.capture_mode) == (PaymentState.REDIRECTED, "auto")
    assert sandbox.order(payment.oid).state == "PRE"
    return payment


@pytest.mark.parametrize("via", ["refresh", "reconcile"])
def test_approval_learned_from_status_in_auto_mode_is_captured_by_api(
    sandbox_settings: Sandbox,
    merchant: Merchant,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    via: str,
) -> None:
    payment = _auto_with_lost_callback(sandbox_settings, merchant, settings)
    with django_capture_on_commit_callbacks(execute=True):
        if via == "refresh":
            services.refresh(payment, user="staff@shop")
        else:
            Payment.objects.filter(pk=payment.pk).update(
                updated_at=payment.updated_at.replace(year=2020)
            )
            call_command("cmi_reconcile", stdout=StringIO())
    payment.refresh_from_db()
    assert (payment.state, payment.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
    assert (payment.capture_mode, payment.trans_id) == ("manual", "")
    capture = Operation.objects.get(payment=payment, kind="capture")
    assert (capture.succeeded, capture.key) == (True, f"{via}-capture")
    assert sandbox_settings.order(payment.oid).state == "POST"
    # CMI's callback finally comes (its TransId need not be ORDERSTATUS's): a duplicate,
    # answered APPROVED; its TransId is recorded now; nothing is captured twice.
    (late,) = merchant.wait_for("/callback", 1)
    fields = {**late.values}
    assert services.handle_callback(fields).reply == "APPROVED"
    payment.refresh_from_db()
    assert payment.trans_id == fields["TransId"]
    assert Operation.objects.filter(payment=payment, kind="capture").count() == 1
    assert [m for m, _ in hook_calls(payment)] == ["authorised", "captured"]


def test_status_approval_then_callback_with_another_transid_is_a_duplicate(
    sandbox_settings: Sandbox, merchant: Merchant
) -> None:
    payment = pay_on_emulator(sandbox_settings, merchant.base_url)  # manual mode
    services.refresh(payment)
    assert (payment.state, payment.trans_id) == (PaymentState.AUTHORISED, "")
    (late,) = merchant.wait_for("/callback", 1)
    other = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=payment.oid,
        amount=AMOUNT,
        trans_id="OTHER-TRANS-ID",
        request_fields=payment.request_fields,
    )
    assert services.handle_callback(other).reply == "APPROVED"
    payment.refresh_from_db()
    assert (payment.state, payment.trans_id) == (PaymentState.AUTHORISED, "OTHER-TRANS-ID")
    assert hook_calls(payment) == [("authorised", AMOUNT)]
    assert late.values["oid"] == payment.oid


def test_status_approval_whose_hook_fails_is_flagged_not_captured(
    sandbox_settings: Sandbox,
    merchant: Merchant,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payment = _auto_with_lost_callback(sandbox_settings, merchant, settings)
    Payment.objects.filter(pk=payment.pk).update(data={"hook_raises": True})
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        services.refresh(payment)
    payment.refresh_from_db()
    assert payment.state == PaymentState.NEEDS_ATTENTION
    assert "HookFailedError" in payment.attention_reason
    assert not Operation.objects.filter(payment=payment, kind="capture").exists()
    assert sandbox_settings.order(payment.oid).state == "PRE"
