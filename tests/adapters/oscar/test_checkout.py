"""Checkout to CMI's form, the callback placing the order, the shopper's returns."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.models import CallbackLog, Payment
from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model

from cmi_core import verify_hash
from tests.adapters.oscar.support import (
    STORE_KEY,
    address_to_preview,
    callback_for,
    fill_basket,
    form_of,
    place_order,
    post_form,
    start_payment,
)

Order = get_model("order", "Order")
Basket = get_model("basket", "Basket")
UserAddress = get_model("address", "UserAddress")

pytestmark = pytest.mark.django_db


def test_place_order_renders_the_signed_form(shopper: Any, product: Any) -> None:
    payment, fields = start_payment(shopper, product)
    verify_hash({**fields, "HASH": fields["hash"]}, STORE_KEY)
    assert fields["oid"] == f"{payment.reference}-1"
    assert fields["amount"] == "120.50"
    assert fields["currency"] == "504"
    assert fields["callbackURL" if "callbackURL" in fields else "CallbackURL"].endswith(
        "/cmi/callback/"
    )
    assert payment.state == "redirected"
    assert Basket.objects.get(pk=payment.data["basket_id"]).status == Basket.FROZEN
    assert not Order.objects.exists()


def test_callback_places_exactly_one_order(shopper: Any, product: Any, client: Any) -> None:
    payment, fields = start_payment(shopper, product)
    callback = callback_for(payment, request_fields=fields)
    first = post_form(client, "/cmi/callback/", callback)
    second = post_form(client, "/cmi/callback/", callback)
    assert first.content == second.content == b"ACTION=POSTAUTH"
    order = Order.objects.get()
    assert order.number == payment.reference
    assert order.total_incl_tax == payment.amount
    assert order.status == "Paid"
    source = order.sources.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, payment.amount)
    assert Basket.objects.get(pk=payment.data["basket_id"]).status == Basket.SUBMITTED


def test_signed_in_shoppers_address_book_counts_each_order_once(
    product: Any, client: Any, django_user_model: Any
) -> None:
    """As Oscar's own checkout does: the shipping address joins the shopper's address book."""
    user = django_user_model.objects.create_user("amina", "amina@example.ma", "pw")
    shopper = Client()
    shopper.force_login(user)
    for orders in (1, 2):
        fill_basket(shopper, product)
        assert shopper.get(reverse("checkout:index")).status_code == 302
        address_to_preview(shopper)
        _, fields = form_of(place_order(shopper).content.decode())
        payment = Payment.objects.get(oid=fields["oid"])
        callback = callback_for(payment, request_fields=fields)
        for _ in range(2):  # CMI's duplicate changes nothing
            assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
        address = UserAddress.objects.get(user=user)
        assert (address.line1, address.num_orders_as_shipping_address) == ("12 rue Tarik", orders)
    assert Order.objects.filter(user=user).count() == 2


def test_decline_then_approval_uses_a_new_oid(shopper: Any, product: Any, client: Any) -> None:
    first, fields = start_payment(shopper, product)
    declined = callback_for(first, request_fields=fields, approved=False, err_code="ISO8583-51")
    assert post_form(client, "/cmi/callback/", declined).content == b"APPROVED"
    # The shopper leaves CMI's page: failUrl POST, then the GET page thaws the basket.
    response = post_form(shopper, "/cmi/fail/", declined)
    assert response.status_code == 303
    page = shopper.get(response["Location"])
    assert page.status_code == 302
    assert page["Location"] == reverse("checkout:payment-details")
    assert Basket.objects.get(pk=first.data["basket_id"]).status == Basket.OPEN
    shown = [str(m) for m in page.wsgi_request._messages]
    assert shown
    assert "51" not in shown[0]  # shopper-safe: the bank's reason is not named
    assert not Order.objects.exists()

    response = shopper.post(reverse("checkout:preview"), {"action": "place_order"})
    assert response.status_code == 200
    second = Payment.objects.exclude(pk=first.pk).get()
    assert second.oid == f"{first.reference}-2"
    approved = callback_for(second, trans_id="T-2")
    assert post_form(client, "/cmi/callback/", approved).content == b"ACTION=POSTAUTH"
    order = Order.objects.get()
    assert order.sources.get().reference == second.oid
    first.refresh_from_db()
    assert first.state == "declined"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda cb: {**cb, "amount": "1.00"}, id="amount-changed-hash-kept"),
        pytest.param(lambda cb: {**cb, "HASH": "A" * 88}, id="forged-hash"),
    ],
)
def test_forged_callback_places_no_order(
    shopper: Any, product: Any, client: Any, forge: Any
) -> None:
    payment, _ = start_payment(shopper, product)
    response = post_form(client, "/cmi/callback/", forge(callback_for(payment)))
    assert response.content == b"FAILURE"
    assert not Order.objects.exists()
    payment.refresh_from_db()
    assert payment.state == "redirected"


def test_signed_callback_with_another_amount_is_refused(
    shopper: Any, product: Any, client: Any
) -> None:
    """Not the amount the shop signed: not bound to its request, so nothing changes."""
    payment, _ = start_payment(shopper, product)
    mismatch = callback_for(payment, amount=payment.amount - 1)
    assert post_form(client, "/cmi/callback/", mismatch).content == b"FAILURE"
    assert not Order.objects.exists()
    payment.refresh_from_db()
    assert payment.state == "redirected"


def test_ok_return_without_callback_places_the_order(
    shopper: Any, product: Any, settings: Any
) -> None:
    settings.CMI_PAYMENTS = {
        "default": {**settings.CMI_PAYMENTS["default"], "CAPTURE_MODE": "manual"}
    }
    payment, fields = start_payment(shopper, product)
    response = post_form(shopper, "/cmi/ok/", callback_for(payment, request_fields=fields))
    assert response.status_code == 303
    page = shopper.get(response["Location"])
    assert page.status_code == 302
    assert page["Location"] == reverse("checkout:thank-you")
    order = Order.objects.get()
    assert order.status == "Pending"  # authorised, not captured
    thanks = shopper.get(page["Location"])
    assert thanks.status_code == 200
    assert order.number in thanks.content.decode()
    payment.refresh_from_db()
    assert payment.state == "authorised"


def test_manual_mode_answers_approved_and_leaves_capture_to_staff(
    shopper: Any, product: Any, client: Any, settings: Any
) -> None:
    settings.CMI_PAYMENTS = {
        "default": {**settings.CMI_PAYMENTS["default"], "CAPTURE_MODE": "manual"}
    }
    payment, _ = start_payment(shopper, product)
    assert post_form(client, "/cmi/callback/", callback_for(payment)).content == b"APPROVED"
    order = Order.objects.get()
    assert order.status == "Pending"
    source = order.sources.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, 0)
    assert [e.event_type.name for e in order.payment_events.all()] == ["Authorised"]


def test_ok_return_after_callback_shows_thank_you(shopper: Any, product: Any, client: Any) -> None:
    payment, fields = start_payment(shopper, product)
    callback = callback_for(payment, request_fields=fields)
    post_form(client, "/cmi/callback/", callback)
    response = post_form(shopper, "/cmi/ok/", callback)
    page = shopper.get(response["Location"])
    assert page["Location"] == reverse("checkout:thank-you")
    assert Order.objects.count() == 1


def test_cancel_link_thaws_the_basket(shopper: Any, product: Any) -> None:
    payment, fields = start_payment(shopper, product)
    response = shopper.get(fields["shopurl"].split("testserver", 1)[1])
    assert response.status_code == 302
    assert response["Location"] == reverse("checkout:payment-details")
    assert Basket.objects.get(pk=payment.data["basket_id"]).status == Basket.OPEN
    basket_page = shopper.get(reverse("basket:summary"))
    assert "Tajine" in basket_page.content.decode()


def test_return_page_needs_a_valid_token(shopper: Any, product: Any) -> None:
    payment, _ = start_payment(shopper, product)
    assert shopper.get(f"/cmi/return/{payment.oid}/").status_code == 404


def test_return_page_waits_while_the_callback_is_on_its_way(shopper: Any, product: Any) -> None:
    from cmi_oscar.views import payment_token

    payment, _ = start_payment(shopper, product)
    page = shopper.get(reverse("cmi_oscar:return", args=[payment_token(payment.oid)]))
    assert page.status_code == 202
    assert b'http-equiv="refresh"' in page.content


def test_second_approved_attempt_is_not_captured(shopper: Any, product: Any, client: Any) -> None:
    first, _ = start_payment(shopper, product)
    Basket.objects.filter(pk=first.data["basket_id"]).update(status=Basket.OPEN)
    assert shopper.post(reverse("checkout:preview"), {"action": "place_order"}).status_code == 200
    second = Payment.objects.exclude(pk=first.pk).get()
    ok = post_form(client, "/cmi/callback/", callback_for(first, trans_id="T-1"))
    assert ok.content == b"ACTION=POSTAUTH"
    twice = post_form(client, "/cmi/callback/", callback_for(second, trans_id="T-2"))
    assert twice.content == b"FAILURE"  # CMI keeps it uncaptured
    order = Order.objects.get()  # no second order
    assert order.sources.get().reference == first.oid
    # ...and staff learn a card was authorised: flagged, with a note on the order
    second.refresh_from_db()
    assert second.state == "needs_attention"
    assert "DuplicatePaymentError" in second.attention_reason
    assert "already paid" in second.attention_reason
    assert "already paid" in CallbackLog.objects.get(oid=second.oid).error
    assert any(second.oid in note.message for note in order.notes.all())


def test_second_attempt_under_another_order_number_is_not_captured(
    shopper: Any, product: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: a shop's own OrderNumberGenerator (Oscar lets a shop fork it; a sequence, a
    random number) gives each "Place order" of one basket a new number. The second paid
    attempt's number has no order, but its basket was submitted with the first one's: it
    must not place a second order from it (and CMI must not capture twice)."""
    from oscar.apps.order.utils import OrderNumberGenerator

    numbers = iter(["700001", "700002"])
    monkeypatch.setattr(OrderNumberGenerator, "order_number", lambda self, basket: next(numbers))
    first, _ = start_payment(shopper, product)
    Basket.objects.filter(pk=first.data["basket_id"]).update(status=Basket.OPEN)
    assert shopper.post(reverse("checkout:preview"), {"action": "place_order"}).status_code == 200
    second = Payment.objects.exclude(pk=first.pk).get()
    assert second.data["order_number"] != first.data["order_number"]
    ok = post_form(client, "/cmi/callback/", callback_for(first, trans_id="T-1"))
    assert ok.content == b"ACTION=POSTAUTH"
    twice = post_form(client, "/cmi/callback/", callback_for(second, trans_id="T-2"))
    assert twice.content == b"FAILURE"  # CMI keeps it uncaptured
    assert Order.objects.get().number == "700001"  # no second order
    second.refresh_from_db()
    assert second.state == "needs_attention"


def test_basket_changed_after_payment_started_places_no_order(
    shopper: Any, product: Any, client: Any
) -> None:
    payment, _ = start_payment(shopper, product)
    basket = Basket.objects.get(pk=payment.data["basket_id"])
    basket.lines.update(quantity=3)  # behind the frozen basket's back
    assert post_form(client, "/cmi/callback/", callback_for(payment)).content == b"FAILURE"
    assert not Order.objects.exists()
    payment.refresh_from_db()
    assert payment.state == "needs_attention"
    assert "BasketChangedError" in payment.attention_reason


@pytest.mark.parametrize("path", ["/cmi/ok/", "/cmi/fail/"])
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p: {"oid": p.oid}, id="no-hash"),
        pytest.param(lambda p: {**callback_for(p), "HASH": "A" * 88}, id="wrong-hash"),
    ],
)
def test_unverified_return_reveals_and_changes_nothing(
    shopper: Any, product: Any, client: Any, path: str, forge: Any
) -> None:
    """Someone else POSTs the victim's oid to okUrl/failUrl: no page of that payment."""
    victim, fields = start_payment(shopper, product)
    ok = post_form(client, "/cmi/callback/", callback_for(victim, request_fields=fields))
    assert ok.content == b"ACTION=POSTAUTH"  # the victim's order exists
    Order.objects.get()
    attacker = type(client)()
    response = post_form(attacker, path, forge(victim))
    assert (response.status_code, response["Location"]) == (303, "/cmi/unconfirmed/")
    page = attacker.get(response["Location"], follow=True)
    html = page.content.decode()
    assert page.status_code == 200
    for secret in (victim.reference, victim.oid, "amina@example.ma", "Tarik"):
        assert secret not in html
    assert "checkout_order_id" not in attacker.session


@pytest.mark.parametrize("path", ["/cmi/ok/", "/cmi/fail/"])
def test_unverified_return_does_not_thaw_the_frozen_basket(
    shopper: Any, product: Any, client: Any, path: str
) -> None:
    victim, _ = start_payment(shopper, product)
    attacker = type(client)()
    response = post_form(attacker, path, {"oid": victim.oid})
    attacker.get(response["Location"], follow=True)
    assert Basket.objects.get(pk=victim.data["basket_id"]).status == Basket.FROZEN
    victim.refresh_from_db()
    assert victim.state == "redirected"
    # the genuine approval still places the order
    assert post_form(client, "/cmi/callback/", callback_for(victim)).content == b"ACTION=POSTAUTH"
    assert Order.objects.get().number == victim.reference


def test_approval_posted_to_fail_url_does_not_thaw(shopper: Any, product: Any) -> None:
    payment, fields = start_payment(shopper, product)
    response = post_form(shopper, "/cmi/fail/", callback_for(payment, request_fields=fields))
    assert "/cmi/return/" in response["Location"]
    shopper.get(response["Location"])
    assert Basket.objects.get(pk=payment.data["basket_id"]).status == Basket.FROZEN


def test_auto_capture_records_source_and_events_once(
    shopper: Any, product: Any, client: Any
) -> None:
    """One change with ``authorised`` and ``captured``: the capture is recorded on the source
    the authorisation just wrote; the hook keeps nothing between calls (no ContextVar)."""
    import contextvars

    from cmi_oscar import hooks

    payment, fields = start_payment(shopper, product)
    callback = callback_for(payment, request_fields=fields)
    assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    assert not [v for v in vars(hooks).values() if isinstance(v, contextvars.ContextVar)]
    order = Order.objects.get()
    source = order.sources.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, payment.amount)
    assert sorted(source.transactions.values_list("txn_type", flat=True)) == [
        "Authorise",
        "Debit",
    ]
    events = order.payment_events.order_by("id")
    assert [e.event_type.name for e in events] == ["Authorised", "Paid"]
    for event in events:
        assert sorted((q.line_id, q.quantity) for q in event.line_quantities.all()) == sorted(
            (line.id, line.quantity) for line in order.lines.all()
        )
