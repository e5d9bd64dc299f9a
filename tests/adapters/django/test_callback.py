"""create_payment, the callback endpoint and the okUrl/failUrl receivers, on the real ORM."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django import services, signals
from cmi_django.models import CallbackLog, Payment
from django.test import Client

from cmi_core import PaymentState, ValidationError
from cmi_core.testing import tamper
from tests.adapters.django.testapp.models import HookCall

from .conftest import AMOUNT, STORE_KEY, callback_for, order, post_callback

pytestmark = pytest.mark.django_db


def calls(payment: Payment) -> list[str]:
    return list(HookCall.objects.filter(oid=payment.oid).values_list("method", flat=True))


def reload(payment: Payment) -> Payment:
    return Payment.objects.get(pk=payment.pk)


# -- create_payment ---------------------------------------------------------------------


def test_create_payment_stores_row_and_signs_form() -> None:
    payment, request = services.create_payment(
        platform="test", reference="basket-42", order=order(), data={"basket": 42}
    )
    fields = request.as_dict()
    assert payment.state == PaymentState.REDIRECTED
    assert payment.oid == fields["oid"]
    assert payment.oid.startswith("test-")
    assert (payment.amount, payment.currency, payment.capture_mode) == (AMOUNT, "504", "auto")
    assert reload(payment).data == {"basket": 42}
    assert fields["CallbackURL"] == "https://shop.example.ma/cmi/callback/"
    assert fields["hash"]
    assert request.action.endswith("/fim/est3dgate")


def test_create_payment_refuses_bad_fields_and_stores_nothing() -> None:
    with pytest.raises(ValidationError, match="email"):
        services.create_payment(platform="test", reference="b", order=order(email="nope"))
    assert not Payment.objects.exists()


def test_new_oid_is_cmi_safe_and_unique(make_payment: Callable[..., Payment]) -> None:
    oids = {services.new_oid("Panier n°7/2") for _ in range(20)}
    assert len(oids) == 20
    assert all(o.startswith("Panier-n-7-2-") and len(o) <= 64 for o in oids)


# -- callbacks --------------------------------------------------------------------------


def test_approved_callback_auto_mode_captures(csrf_client: Client, payment: Payment) -> None:
    response = post_callback(csrf_client, callback_for(payment, trans_id="T-1"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"ACTION=POSTAUTH"
    saved = reload(payment)
    assert saved.state == PaymentState.CAPTURED
    assert (saved.authorised_amount, saved.captured_amount) == (AMOUNT, AMOUNT)
    assert (saved.trans_id, saved.auth_code, saved.proc_return_code) == ("T-1", "746579", "00")
    assert (saved.masked_pan, saved.card_brand) == ("400000***7190", "VISA")
    assert calls(payment) == ["authorised", "captured"]
    log = CallbackLog.objects.get(payment=payment)
    assert (log.kind, log.verified, log.outcome, log.reply) == (
        "callback",
        True,
        "capture",
        "ACTION=POSTAUTH",
    )
    assert log.fields["TransId"] == "T-1"
    assert STORE_KEY not in str(log.fields)


def test_approved_callback_manual_mode_authorises(
    client: Client, make_payment: Callable[..., Payment], settings: Any
) -> None:
    settings.CMI_PAYMENTS = {
        "default": {**settings.CMI_PAYMENTS["default"], "CAPTURE_MODE": "manual"}
    }
    payment = make_payment()
    assert post_callback(client, callback_for(payment)).content == b"APPROVED"
    saved = reload(payment)
    assert saved.state == PaymentState.AUTHORISED
    assert saved.captured_amount == 0
    assert calls(payment) == ["authorised"]


def test_declined_then_approved(client: Client, payment: Payment) -> None:
    declined = callback_for(payment, approved=False, err_code="ISO8583-51", trans_id="T-D")
    assert post_callback(client, declined).content == b"APPROVED"
    saved = reload(payment)
    assert (saved.state, saved.declined_attempts) == (PaymentState.DECLINED, 1)
    assert (saved.proc_return_code, saved.error_code, saved.trans_id) == ("05", "ISO8583-51", "")
    assert post_callback(client, callback_for(payment, trans_id="T-OK")).content == (
        b"ACTION=POSTAUTH"
    )
    saved = reload(payment)
    assert (saved.state, saved.declined_attempts, saved.trans_id) == (
        PaymentState.CAPTURED,
        1,
        "T-OK",
    )
    assert saved.error_code == ""
    assert calls(payment) == ["declined", "authorised", "captured"]


def test_late_decline_changes_nothing(client: Client, payment: Payment) -> None:
    post_callback(client, callback_for(payment, trans_id="T-1"))
    late = callback_for(payment, approved=False, trans_id="T-2")
    assert post_callback(client, late).content == b"APPROVED"
    saved = reload(payment)
    assert (saved.state, saved.declined_attempts, saved.trans_id) == ("captured", 0, "T-1")
    assert saved.proc_return_code == "00"


def test_forged_hash_is_refused_without_change(client: Client, payment: Payment) -> None:
    forged = tamper(callback_for(payment), HASH="c2lnbmF0dXJlIGZvcmfDqWU=")
    assert post_callback(client, forged).content == b"FAILURE"
    unsigned = {k: v for k, v in callback_for(payment).items() if k != "HASH"}
    assert post_callback(client, unsigned).content == b"FAILURE"
    saved = reload(payment)
    assert saved.state == PaymentState.REDIRECTED
    assert calls(payment) == []
    logs = CallbackLog.objects.filter(payment=payment)
    assert [(log.verified, log.outcome, log.reply) for log in logs] == [
        (False, "invalid", "FAILURE")
    ] * 2


def test_tampered_amount_is_refused(client: Client, payment: Payment) -> None:
    tampered = tamper(callback_for(payment), amount="1.00")
    assert post_callback(client, tampered).content == b"FAILURE"
    assert reload(payment).state == PaymentState.REDIRECTED


def test_unknown_oid(client: Client, payment: Payment) -> None:
    fields = callback_for(payment, oid="nobody-123")
    assert post_callback(client, fields).content == b"FAILURE"
    log = CallbackLog.objects.get(oid="nobody-123")
    assert (log.payment, log.verified, log.outcome, log.reply) == (
        None,
        False,
        "unknown_order",
        "FAILURE",
    )
    assert reload(payment).state == PaymentState.REDIRECTED


def test_signed_amount_other_than_requested_is_refused_untouched(
    client: Client, payment: Payment
) -> None:
    """A signed result whose amount is not the one the shop signed is not bound to its
    request (the renaming attack of issue 11 looks like this): FAILURE, nothing changes,
    the log names the rule."""
    fields = callback_for(payment, amount=Decimal("12.05"))
    assert post_callback(client, fields).content == b"FAILURE"
    saved = reload(payment)
    assert saved.state == PaymentState.REDIRECTED
    assert saved.captured_amount == 0
    assert calls(payment) == []
    log = CallbackLog.objects.get(payment=payment)
    assert (log.outcome, log.verified) == ("invalid", False)
    assert "request field 'amount' came back changed" in log.error


def test_duplicate_callback_same_reply_hook_once(client: Client, payment: Payment) -> None:
    fields = callback_for(payment, trans_id="T-1")
    replies = [post_callback(client, fields).content for _ in range(3)]
    assert replies == [b"ACTION=POSTAUTH"] * 3
    assert calls(payment) == ["authorised", "captured"]
    outcomes = list(CallbackLog.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["capture", "duplicate", "duplicate"]
    assert reload(payment).captured_amount == AMOUNT


def test_second_approval_with_another_transid_is_a_conflict(
    client: Client, payment: Payment
) -> None:
    post_callback(client, callback_for(payment, trans_id="T-1"))
    assert post_callback(client, callback_for(payment, trans_id="T-2")).content == b"FAILURE"
    saved = reload(payment)
    assert (saved.state, saved.trans_id) == (PaymentState.CAPTURED, "T-1")
    assert CallbackLog.objects.filter(outcome="conflict").count() == 1


def test_get_is_405(client: Client) -> None:
    assert client.get("/cmi/callback/").status_code == 405
    assert client.put("/cmi/callback/").status_code == 405
    assert not CallbackLog.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00garbage",
        b"oid=%FF%FE&amount=1",
        b"a=1&a=2",
        b"x=" + b"A" * (services.MAX_BODY + 10),
        b"&".join(b"f%d=1" % n for n in range(services.MAX_FIELDS + 5)),
        b"",
        b"oid=\x00zero&HASH=x",
    ],
    ids=["binary", "bad-utf8-escape", "repeated", "huge", "too-many-fields", "empty", "nul"],
)
def test_garbage_body_is_failure_not_500(client: Client, payment: Payment, body: bytes) -> None:
    response = post_callback(client, body)
    assert (response.status_code, response.content) == (200, b"FAILURE")
    log = CallbackLog.objects.get()
    assert (log.verified, log.reply) == (False, "FAILURE")
    assert reload(payment).state == PaymentState.REDIRECTED


def test_hook_exception_rolls_back_and_still_logs(
    client: Client, make_payment: Callable[..., Payment], caplog: pytest.LogCaptureFixture
) -> None:
    payment = make_payment(data={"hook_raises": True})
    assert post_callback(client, callback_for(payment)).content == b"FAILURE"
    saved = reload(payment)
    assert (saved.trans_id, saved.authorised_amount) == ("", 0)  # the approval rolled back
    assert "authorised" not in calls(payment)  # the hook's own write was rolled back too
    log = CallbackLog.objects.get(oid=payment.oid)
    assert (log.reply, log.outcome) == ("FAILURE", "error")
    assert "HookFailedError" in log.error
    assert STORE_KEY not in caplog.text
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)
    # A card was authorised but the platform could not record it: after the rollback the
    # payment is flagged (its own transaction), so staff learn of it and can void it.
    assert saved.state == "needs_attention"
    assert "HookFailedError: the platform could not place the order" in saved.attention_reason
    assert calls(payment) == ["needs_attention"]
    assert log.payment == saved
    # CMI's retries are answered FAILURE until staff look (refresh, then capture or void).
    Payment.objects.filter(pk=payment.pk).update(data={})
    assert post_callback(client, callback_for(payment)).content == b"FAILURE"
    assert reload(payment).state == "needs_attention"


def test_retryable_hook_error_is_not_flagged(
    client: Client, make_payment: Callable[..., Payment]
) -> None:
    payment = make_payment(data={"hook_retry": True})
    assert post_callback(client, callback_for(payment)).content == b"FAILURE"
    assert reload(payment).state == "redirected"  # CMI retries; nothing to tell staff yet
    Payment.objects.filter(pk=payment.pk).update(data={})
    assert post_callback(client, callback_for(payment)).content == b"ACTION=POSTAUTH"


def test_forged_callback_never_flags(client: Client, make_payment: Callable[..., Payment]) -> None:
    payment = make_payment(data={"hook_raises": True})
    forged = tamper(callback_for(payment), HASH="c2lnbmF0dXJlIGZvcmfDqWU=")
    assert post_callback(client, forged).content == b"FAILURE"
    assert reload(payment).state == "redirected"
    assert calls(payment) == []


def test_signals_are_sent_once(client: Client, payment: Payment) -> None:
    received: list[tuple[str, Any]] = []

    def on_captured(sender: Any, payment: Payment, amount: Decimal, **kwargs: Any) -> None:
        received.append((payment.oid, amount))

    signals.payment_captured.connect(on_captured)
    try:
        fields = callback_for(payment)
        post_callback(client, fields)
        post_callback(client, fields)
    finally:
        signals.payment_captured.disconnect(on_captured)
    assert received == [(payment.oid, AMOUNT)]


def test_handle_callback_never_raises_on_odd_input(payment: Payment) -> None:
    outcome = services.handle_callback({"oid": payment.oid, "amount": "abc", "HASH": "x"})
    assert (outcome.reply, outcome.verified) == ("FAILURE", False)
    outcome = services.handle_callback({})
    assert outcome.reply == "FAILURE"


def test_bad_configuration_is_failure_not_500(
    client: Client, payment: Payment, settings: Any
) -> None:
    settings.CMI_PAYMENTS = {}
    assert post_callback(client, callback_for(payment)).content == b"FAILURE"
    assert CallbackLog.objects.get().outcome == "error"


# -- okUrl / failUrl --------------------------------------------------------------------


def post_return(client: Client, path: str, fields: dict[str, str]) -> Any:
    return client.post(
        path, data=urlencode(fields), content_type="application/x-www-form-urlencoded"
    )


def test_ok_return_after_callback_redirects_303(csrf_client: Client, payment: Payment) -> None:
    fields = callback_for(payment)
    post_callback(csrf_client, fields)
    response = post_return(csrf_client, "/cmi/ok/", fields)
    assert (response.status_code, response["Location"]) == (303, "/thanks/")
    assert calls(payment) == ["authorised", "captured"]
    assert csrf_client.get("/cmi/ok/").status_code == 405


def test_ok_return_without_callback_authorises_then_captures_by_api(
    client: Client,
    make_payment: Callable[..., Payment],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """No API user here: authorised, nothing queued. The capture through CMI's API is
    tested for real in test_operations.py (test_ok_return_fallback_captures_...)."""
    payment = make_payment()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_return(client, "/cmi/ok/", callback_for(payment, trans_id="T-1"))
    assert response["Location"] == "/thanks/"
    saved = reload(payment)
    assert (saved.state, saved.capture_mode, saved.trans_id) == ("authorised", "manual", "T-1")
    assert len(callbacks) == 0  # no API user in the test settings: nothing to capture with
    assert not saved.operations.exists()
    # the callback arriving late is a duplicate answered APPROVED (CMI must not capture)
    assert post_callback(client, callback_for(payment, trans_id="T-1")).content == b"APPROVED"
    assert calls(payment) == ["authorised"]


def test_ok_return_hook_failure_flags_the_payment(
    client: Client, make_payment: Callable[..., Payment]
) -> None:
    payment = make_payment(data={"hook_raises": True})
    outcome = services.handle_return(callback_for(payment, trans_id="T-1"), kind="ok")
    assert (outcome.verified, outcome.approved) == (True, False)
    assert outcome.payment is not None
    assert outcome.payment.pk == payment.pk
    saved = reload(payment)
    assert saved.state == "needs_attention"
    assert "HookFailedError" in saved.attention_reason
    assert (saved.authorised_amount, saved.trans_id) == (0, "")  # the approval rolled back
    assert CallbackLog.objects.get(kind="ok").payment == saved


def test_fail_return_gives_shopper_safe_message(client: Client, payment: Payment) -> None:
    fields = callback_for(payment, approved=False, err_code="ISO8583-51")
    outcome = services.handle_return(fields, kind="fail")
    assert (outcome.approved, outcome.verified) == (False, True)
    assert "refusé" in outcome.shopper_message
    assert "51" not in outcome.shopper_message
    assert reload(payment).declined_attempts == 0  # the callback counts declines, not returns
    response = post_return(client, "/cmi/fail/", fields)
    assert response.status_code == 303


def test_forged_ok_return_is_not_approved(client: Client, payment: Payment) -> None:
    forged = tamper(callback_for(payment), amount="1.00")
    outcome = services.handle_return(forged, kind="ok")
    assert (outcome.approved, outcome.verified, outcome.payment) == (False, False, None)
    assert reload(payment).state == PaymentState.REDIRECTED
    response = post_return(client, "/cmi/ok/", forged)
    assert response["Location"] == "/cmi/unconfirmed/"  # the neutral page, not the shop's
    assert CallbackLog.objects.filter(kind="ok", verified=False, payment=payment).count() == 2


@pytest.mark.parametrize("path", ["/cmi/ok/", "/cmi/fail/"])
@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(lambda p: {"oid": p.oid}, id="no-hash"),
        pytest.param(lambda p: tamper(callback_for(p), HASH="A" * 88), id="wrong-hash"),
    ],
)
def test_unverified_return_names_no_payment(
    client: Client, payment: Payment, path: str, fields: Any
) -> None:
    outcome = services.handle_return(fields(payment), kind="ok" if "ok" in path else "fail")
    assert (outcome.payment, outcome.verified, outcome.approved) == (None, False, False)
    response = post_return(client, path, fields(payment))
    assert (response.status_code, response["Location"]) == (303, "/cmi/unconfirmed/")
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-cmi-unconfirmed" in html
    assert payment.oid not in html
    assert payment.email not in html
    assert reload(payment).state == PaymentState.REDIRECTED
    assert calls(payment) == []
