"""The dashboard section: list, detail, and staff operations against the emulator's API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django.config import get_config
from cmi_django.models import Payment
from django.urls import reverse
from oscar.core.loading import get_model

from cmi_core import CMIClient
from cmi_core.sandbox import Sandbox
from tests.adapters.oscar.conftest import sandbox_payments
from tests.adapters.oscar.support import post_form, start_payment
from tests.sandbox.support import Browser

Order = get_model("order", "Order")

pytestmark = pytest.mark.django_db


@pytest.fixture
def manual(settings: Any, sandbox: Sandbox) -> Sandbox:
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url, capture_mode="manual")
    return sandbox


def paid_through_emulator(shopper: Any, product: Any, sandbox: Sandbox) -> Payment:
    """A real approval on the emulator (PRE there), told to the shop by the okUrl POST.

    The emulator cannot reach the test client's server, so its callback is dropped; the
    verified okUrl POST places the order (manual mode: authorised, CMI holds PRE).
    """
    payment, fields = start_payment(shopper, product)
    sandbox.set_fault("drop", oid=payment.oid)
    browser = Browser(sandbox)
    browser.open(list(fields.items()))
    browser.pay()
    action, returned = browser.return_form()
    assert action.endswith("/cmi/ok/")
    response = post_form(shopper, "/cmi/ok/", dict(returned))
    assert response.status_code == 303
    payment.refresh_from_db()
    assert payment.state == "authorised"
    assert sandbox.order(payment.oid).state == "PRE"
    return payment


def act(staff: Any, payment: Payment, action: str, **data: str) -> list[str]:
    url = reverse("cmi_oscar_dashboard:cmi-payment-action", args=[payment.pk, action])
    response = staff.post(url, data, follow=True)
    assert response.status_code == 200
    payment.refresh_from_db()
    return [str(m) for m in response.context["messages"]]


def test_capture_then_partial_refund(
    staff: Any, shopper: Any, product: Any, manual: Sandbox
) -> None:
    payment = paid_through_emulator(shopper, product, manual)
    order = Order.objects.get()
    assert order.status == "Pending"

    act(staff, payment, "capture")
    assert payment.state == "captured"
    assert manual.order(payment.oid).state == "POST"
    order.refresh_from_db()
    assert order.status == "Paid"
    assert order.sources.get().amount_debited == payment.amount

    act(staff, payment, "refund", amount="20.50")
    assert payment.state == "partially_refunded"
    assert payment.refunded_amount == Decimal("20.50")
    assert manual.order(payment.oid).state == "RFND"
    source = order.sources.get()
    assert source.amount_refunded == Decimal("20.50")
    assert [e.event_type.name for e in order.payment_events.order_by("id")] == [
        "Authorised",
        "Paid",
        "Refunded",
    ]

    messages = act(staff, payment, "refund", amount="500")
    assert any("exceeds" in m for m in messages)  # refused before CMI is asked
    assert payment.refunded_amount == Decimal("20.50")


def test_void_cancels_the_order(staff: Any, shopper: Any, product: Any, manual: Sandbox) -> None:
    payment = paid_through_emulator(shopper, product, manual)
    act(staff, payment, "void", confirmed="1")
    assert payment.state == "voided"
    assert manual.order(payment.oid).state == "VOID"
    order = Order.objects.get()
    assert order.status == "Cancelled"
    # The order page tells the truth: nothing allocated, nothing taken, and why.
    source = order.sources.get()
    assert (source.amount_allocated, source.amount_debited) == (0, 0)
    assert any("nothing is taken" in note.message for note in order.notes.all())


def test_void_asks_for_confirmation_first(
    staff: Any, shopper: Any, product: Any, manual: Sandbox
) -> None:
    payment = paid_through_emulator(shopper, product, manual)
    url = reverse("cmi_oscar_dashboard:cmi-payment-action", args=[payment.pk, "void"])
    page = staff.post(url, {"key": "void-k1"})
    html = page.content.decode()
    assert page.status_code == 200
    money = f"{payment.amount:.2f}\xa0MAD"  # English: "120.50 MAD", as money
    assert f"Cancel the authorisation of {money}" in html  # what happens, with the amount
    assert 'name="confirmed" value="1"' in html
    payment.refresh_from_db()
    assert payment.state == "authorised"  # nothing done before confirmation
    assert manual.order(payment.oid).state == "PRE"
    assert not payment.operations.exists()
    act(staff, payment, "void", key="void-k1", confirmed="1")
    assert payment.state == "voided"


def test_empty_refund_refunds_nothing_and_a_full_refund_asks_first(
    staff: Any, shopper: Any, product: Any, manual: Sandbox
) -> None:
    payment = paid_through_emulator(shopper, product, manual)
    act(staff, payment, "capture")
    messages = act(staff, payment, "refund", amount="")
    assert messages == ["Enter the amount to refund."]
    assert payment.refunded_amount == 0
    url = reverse("cmi_oscar_dashboard:cmi-payment-action", args=[payment.pk, "refund"])
    everything = f"{payment.amount:.2f}"
    html = staff.post(url, {"amount": everything, "key": "r1"}).content.decode()
    assert f"Refund {everything}\xa0MAD to the card" in html
    payment.refresh_from_db()
    assert payment.refunded_amount == 0
    act(staff, payment, "refund", amount=everything, key="r1", confirmed="1")
    assert payment.state == "refunded"


def test_partial_capture_tells_the_order_about_the_released_rest(
    staff: Any, shopper: Any, product: Any, manual: Sandbox
) -> None:
    payment = paid_through_emulator(shopper, product, manual)
    act(staff, payment, "capture", amount="100")
    assert payment.captured_amount == Decimal("100.00")
    order = Order.objects.get()
    source = order.sources.get()
    assert (source.amount_allocated, source.amount_debited) == (Decimal(100), Decimal(100))
    notes = [note.message for note in order.notes.all()]
    rest = f"{payment.amount - 100:.2f}\xa0MAD is released"
    assert any(rest in note for note in notes), notes


def test_refresh_reads_cmi_and_cmi_refusals_reach_staff(
    staff: Any, shopper: Any, product: Any, manual: Sandbox
) -> None:
    payment = paid_through_emulator(shopper, product, manual)
    with CMIClient(get_config()) as client:  # someone voids it in CMI's Merchant Center
        client.void(payment.oid)
    messages = act(staff, payment, "capture")
    assert any(m.startswith("CMI refused") for m in messages), messages
    assert payment.state == "authorised"
    assert payment.operations.get(kind="capture").succeeded is False

    act(staff, payment, "refresh")
    assert payment.state == "voided"
    assert Order.objects.get().status == "Cancelled"


def test_list_filters_and_detail(staff: Any, shopper: Any, product: Any, manual: Sandbox) -> None:
    payment = paid_through_emulator(shopper, product, manual)
    url = reverse("cmi_oscar_dashboard:cmi-payment-list")
    assert payment.oid in staff.get(url).content.decode()
    assert payment.oid in staff.get(url, {"state": "authorised"}).content.decode()
    assert payment.oid not in staff.get(url, {"state": "captured"}).content.decode()
    assert payment.oid in staff.get(url, {"order_number": payment.reference}).content.decode()
    detail = staff.get(reverse("cmi_oscar_dashboard:cmi-payment-detail", args=[payment.pk]))
    html = detail.content.decode()
    assert 'id="cmi-capture"' in html
    assert 'id="cmi-refund"' not in html  # nothing captured yet
    assert detail.context["callbacks"].get().kind == "ok"


def test_dashboard_is_for_staff_only(client: Any, db: None) -> None:
    response = client.get(reverse("cmi_oscar_dashboard:cmi-payment-list"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_menu_entry_is_shown_to_staff(staff: Any) -> None:
    page = staff.get(reverse("dashboard:index"))
    assert reverse("cmi_oscar_dashboard:cmi-payment-list") in page.content.decode()


@pytest.mark.parametrize(
    "case",
    [
        (
            "fr",
            "Annulée",
            "retour (okUrl)",
            "accepté, à encaisser par l'équipe",
            "annulation de l'autorisation (void)",
        ),
        ("ar", "ملغى", "عودة (okUrl)", "مقبول، يحصّله الموظفون", "إلغاء التفويض (void)"),
    ],
    ids=["fr", "ar"],
)
def test_detail_names_status_and_log_in_the_staff_language(
    staff: Any, shopper: Any, product: Any, manual: Sandbox, case: tuple[str, ...]
) -> None:
    """The order status and the payment log's technical values are translated (issue 13)."""
    lang, status, kind, outcome, operation = case
    payment = paid_through_emulator(shopper, product, manual)
    act(staff, payment, "void", confirmed="1")
    url = reverse("cmi_oscar_dashboard:cmi-payment-detail", args=[payment.pk])
    html = staff.get(url, headers={"accept-language": lang}).content.decode()
    assert f"({status})" in html
    assert "(Cancelled)" not in html
    callbacks = html.split('id="cmi-callbacks"')[1].split("</table>")[0]
    callbacks = callbacks.replace("&#x27;", "'")
    assert f"<td>{kind}</td>" in callbacks
    assert f"<td>{outcome}</td>" in callbacks
    operations = html.split('id="cmi-operations"')[1].split("</table>")[0]
    assert f"<td>{operation}</td>" in operations.replace("&#x27;", "'")


@pytest.mark.parametrize(("lang", "label"), [("fr", "Paiements CMI"), ("ar", "مدفوعات CMI")])
def test_the_menu_entry_is_in_the_staff_language(staff: Any, lang: str, label: str) -> None:
    """The dashboard menu's CMI entry follows the staff member's language (issue 13)."""
    html = staff.get(reverse("dashboard:index"), headers={"accept-language": lang}).content
    assert label in html.decode()


FSI, PDI = "\u2068", "\u2069"


def test_order_notes_isolate_amounts_in_arabic(
    staff: Any, shopper: Any, product: Any, manual: Sandbox
) -> None:
    """The notes written after a partial capture and a void keep each amount whole in a
    right-to-left language (isolated, as the other sentences built in Python are); an
    English note carries no invisible characters."""
    payment = paid_through_emulator(shopper, product, manual)
    staff.defaults["HTTP_ACCEPT_LANGUAGE"] = "ar"
    act(staff, payment, "capture", amount="100")
    order = Order.objects.get()
    (note,) = [n.message for n in order.notes.all()]
    assert note.count(FSI) == 3, note  # captured, authorised, released
    assert note.count(PDI) == 3, note
    assert note.split(FSI)[1].split(PDI)[0] == "100.00\xa0MAD", note

    english = paid_through_emulator(shopper, product, manual)
    staff.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    act(staff, english, "void", confirmed="1")
    english_order = Order.objects.exclude(pk=order.pk).get()
    (void_note,) = [n.message for n in english_order.notes.all()]
    assert FSI not in void_note
    assert PDI not in void_note
    assert f"{english.amount:.2f}\xa0MAD" in void_note


@pytest.mark.parametrize(
    ("lang", "words"), [("fr", "demande une vérification"), ("ar", "تحتاج إلى مراجعة")]
)
def test_the_attention_note_is_in_the_staff_language(
    shopper: Any, product: Any, manual: Sandbox, lang: str, words: str
) -> None:
    """The note written when a payment needs attention is translated, its oid isolated in
    a right-to-left language (issue 13)."""
    from cmi_django import services
    from django.utils import translation

    payment = paid_through_emulator(shopper, product, manual)
    with translation.override(lang):
        services.flag(payment, "checking with the bank")
    (note,) = [n.message for n in Order.objects.get().notes.all()]
    assert words in note, note
    assert "needs attention" not in note
    assert (FSI in note) is (lang == "ar")
