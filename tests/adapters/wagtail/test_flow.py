"""The shopper's flow through Django's test client, with callbacks signed like CMI's.

Form -> signed redirect form -> callback (CSRF-exempt, outside Wagtail's serving) ->
okUrl/failUrl return (CSRF-exempt, 303) -> the page's landing route. Also the pay button
block, signals, the e-mail receipt and the language of what the shopper sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django import signals
from cmi_django.models import CallbackLog, Payment
from cmi_wagtail.models import CMISettings, PaymentPage, payment_page
from django.core import mail
from django.test import Client
from wagtail.models import Site

from cmi_core import PaymentState
from cmi_core.testing import make_callback, tamper
from tests.adapters.wagtail.testapp.models import ArticlePage

from .conftest import STORE_KEY, redirect_fields

pytestmark = pytest.mark.django_db

SHOPPER = {"name": "Amina Test", "email": "amina@example.ma"}


def pay(client: Client, page: Any, **data: str) -> tuple[Payment, dict[str, str]]:
    response = client.post(page.url, {**SHOPPER, **data})
    assert response.status_code == 200, response.content[:500]
    assert response["Cache-Control"] == "no-store"
    action, fields = redirect_fields(response.content.decode())
    assert action.endswith("/fim/est3dgate")
    values = dict(fields)
    return Payment.objects.get(oid=values["oid"]), values


def post_form(client: Client, path: str, fields: dict[str, str]) -> Any:
    return client.post(
        path, data=urlencode(fields), content_type="application/x-www-form-urlencoded"
    )


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    connected = []
    for name in ("payment_authorised", "payment_captured", "payment_declined"):
        signal = getattr(signals, name)

        def handler(sender: Any, _name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            calls.append((_name, {"sender": sender, **kwargs}))

        signal.connect(handler, weak=False)
        connected.append((signal, handler))
    yield calls
    for signal, handler in connected:
        signal.disconnect(handler)


def test_form_starts_a_payment(pay_page: PaymentPage, client: Client, site: Site) -> None:
    payment, fields = pay(client, pay_page)
    assert payment.platform == "wagtail"
    assert payment.reference == str(pay_page.pk)
    assert payment.config_key == f"wagtail:{site.pk}"
    assert payment.state == PaymentState.REDIRECTED.value
    assert payment.amount == Decimal("150.00")
    assert payment.data["shopper"] == SHOPPER
    assert fields["amount"] == "150.00"
    assert fields["currency"] == "504"
    assert fields["lang"] == "fr"
    assert fields["BillToName"] == "Amina Test"
    assert fields["CallbackURL"] == "http://testserver/cmi/callback/"
    assert fields["okUrl"] == "http://testserver/cmi/ok/"
    assert fields["failUrl"] == "http://testserver/cmi/fail/"
    assert fields["shopurl"] == f"http://testserver{pay_page.url}cancel/"


def test_missing_settings_say_unavailable(make_page: Callable[..., Any], client: Client) -> None:
    page = make_page()  # no CMISettings for the site
    response = client.post(page.url, SHOPPER)
    assert response.status_code == 503
    assert Payment.objects.count() == 0


def test_approved_callback_then_return(
    pay_page: PaymentPage,
    client: Client,
    csrf_client: Client,
    received: list[tuple[str, dict[str, Any]]],
) -> None:
    payment, request_fields = pay(client, pay_page)
    callback = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    reply = post_form(csrf_client, "/cmi/callback/", callback)
    assert reply.status_code == 200
    assert reply.content == b"ACTION=POSTAUTH"
    payment.refresh_from_db()
    assert payment.state == PaymentState.CAPTURED.value
    names = [name for name, _ in received]
    assert names == ["payment_authorised", "payment_captured"]
    assert received[0][1]["sender"] is Payment  # one bus: cmi_django.signals
    assert received[0][1]["payment"].pk == payment.pk
    assert payment_page(received[0][1]["payment"]) == pay_page
    assert isinstance(payment_page(received[0][1]["payment"]), PaymentPage)

    back = post_form(csrf_client, "/cmi/ok/", callback)
    assert back.status_code == 303
    assert back["Location"].startswith(f"{pay_page.url}thank-you/?r=")
    landing = client.get(back["Location"])
    html = landing.content.decode()
    assert 'data-cmi-result="approved"' in html
    assert "Merci pour votre paiement." in html
    assert payment.oid in html


def test_declined_return_shows_the_failure_route(
    pay_page: PaymentPage, client: Client, csrf_client: Client
) -> None:
    payment, request_fields = pay(client, pay_page)
    declined = make_callback(
        STORE_KEY,
        oid=payment.oid,
        amount=payment.amount,
        approved=False,
        proc_return_code="51",
        err_code="ISO8583-51",
        request_fields=request_fields,
    )
    assert post_form(csrf_client, "/cmi/callback/", declined).content == b"APPROVED"
    back = post_form(csrf_client, "/cmi/fail/", declined)
    assert back.status_code == 303
    assert back["Location"].startswith(f"{pay_page.url}failure/?r=")
    html = client.get(back["Location"]).content.decode()
    assert 'data-cmi-result="failed"' in html
    assert "a pas abouti." in html
    assert "data-cmi-message" in html
    assert "Insufficient" not in html  # bank reasons are never shown to the shopper
    payment.refresh_from_db()
    assert payment.declined_attempts == 1


def test_ok_return_without_callback_authorises(
    pay_page: PaymentPage, client: Client, csrf_client: Client
) -> None:
    payment, request_fields = pay(client, pay_page)
    approved = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    back = post_form(csrf_client, "/cmi/ok/", approved)
    assert back.status_code == 303
    assert "/thank-you/" in back["Location"]
    payment.refresh_from_db()
    assert PaymentState(payment.state).is_paid


def test_forged_return_is_not_a_payment(
    pay_page: PaymentPage, client: Client, csrf_client: Client
) -> None:
    payment, request_fields = pay(client, pay_page)
    approved = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    forged = tamper(approved, amount="1.00")
    back = post_form(csrf_client, "/cmi/ok/", forged)
    assert back.status_code == 303
    assert back["Location"] == "/cmi/unconfirmed/"  # neutral: no page of that payment
    payment.refresh_from_db()
    assert payment.state == PaymentState.REDIRECTED.value
    reply = post_form(csrf_client, "/cmi/callback/", forged)
    assert reply.content == b"FAILURE"
    assert CallbackLog.objects.filter(oid=payment.oid, verified=False).count() == 2


@pytest.mark.parametrize("path", ["/cmi/ok/", "/cmi/fail/"])
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda fields: {"oid": fields["oid"]}, id="no-hash"),
        pytest.param(lambda fields: {**fields, "HASH": "A" * 88}, id="wrong-hash"),
    ],
)
def test_unverified_return_reveals_and_changes_nothing(
    pay_page: PaymentPage, client: Client, csrf_client: Client, path: str, forge: Any
) -> None:
    """Someone POSTs another payer's oid: no landing token, no page of that payment."""
    payment, request_fields = pay(client, pay_page)
    approved = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    assert post_form(csrf_client, "/cmi/callback/", approved).content == b"ACTION=POSTAUTH"
    stranger = Client()
    back = post_form(stranger, path, forge(approved))
    assert (back.status_code, back["Location"]) == (303, "/cmi/unconfirmed/")
    page = stranger.get(back["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    for secret in (payment.oid, SHOPPER["email"], SHOPPER["name"], "Merci pour votre paiement"):
        assert secret not in html
    before = Payment.objects.get(pk=payment.pk)
    assert (before.state, before.captured_amount) == ("captured", payment.amount)
    assert CallbackLog.objects.filter(oid=payment.oid, kind=path[5:-1], verified=False).exists()


def test_forged_landing_token_shows_nothing_paid(pay_page: PaymentPage, client: Client) -> None:
    html = client.get(f"{pay_page.url}thank-you/?r=forged").content.decode()
    assert 'data-cmi-result="approved"' not in html


def test_cancel_route_shows_the_form_again(pay_page: PaymentPage, client: Client) -> None:
    html = client.get(f"{pay_page.url}cancel/").content.decode()
    assert "data-cmi-cancelled" in html
    assert 'name="email"' in html


def test_callback_and_returns_are_get_proof(client: Client) -> None:
    for path in ("/cmi/callback/", "/cmi/ok/", "/cmi/fail/"):
        assert client.get(path).status_code == 405


def test_arabic_page_is_right_to_left(
    make_page: Callable[..., PaymentPage], cmi_settings: CMISettings, client: Client
) -> None:
    page = make_page(locale="ar", slug="tabarru")
    html = client.get(page.url).content.decode()
    assert 'dir="rtl"' in html
    assert 'lang="ar"' in html
    _, fields = pay(client, page)
    assert fields["lang"] == "ar"


@pytest.mark.parametrize(
    ("locale", "pay", "name_label"),
    [("fr", "Payer", "Nom complet"), ("ar", "ادفع", "الاسم الكامل"), ("en", "Pay", "Full name")],
)
def test_texts_follow_the_page_language(
    make_page: Callable[..., PaymentPage],
    cmi_settings: CMISettings,
    client: Client,
    *,
    locale: str,
    pay: str,
    name_label: str,
) -> None:
    page = make_page(locale=locale, slug=f"page-{locale}")
    html = client.get(page.url).content.decode()
    assert f'<button type="submit">{pay}</button>' in html
    assert name_label in html
    landing = client.get(f"{page.url}failure/?r=x", HTTP_ACCEPT_LANGUAGE="en")
    retry = {"fr": "Réessayer", "ar": "أعد المحاولة", "en": "Try again"}[locale]
    assert retry in landing.content.decode()


def test_english_page(
    make_page: Callable[..., PaymentPage], cmi_settings: CMISettings, client: Client
) -> None:
    page = make_page(locale="en", slug="donate")
    _, fields = pay(client, page)
    assert fields["lang"] == "en"


# The pay button ----------------------------------------------------------------------------


def article_with_buttons(site: Site, target: PaymentPage | None) -> ArticlePage:
    body: list[tuple[str, dict[str, Any]]] = [
        ("pay_button", {"label": "Cotisation", "amount": Decimal("75.50"), "currency": "504"}),
    ]
    if target is not None:
        body.append(("pay_button", {"label": "Don", "amount": Decimal("300"), "page": target}))
    article = ArticlePage(title="Article", slug="article", body=body)
    site.root_page.add_child(instance=article)
    article.save_revision().publish()
    return article


def button_urls(html: str) -> list[str]:
    import re
    from html import unescape

    return [
        unescape(f"{action}?button={token}")
        for action, token in re.findall(
            r'<form method="get" action="([^"]+)" class="cmi-pay-button">\s*'
            r'<input type="hidden" name="button" value="([^"]+)">',
            html,
        )
    ]


def test_pay_button_to_a_payment_page(
    pay_page: PaymentPage, site: Site, client: Client, csrf_client: Client
) -> None:
    article = article_with_buttons(site, pay_page)
    _, to_page = button_urls(client.get(article.url).content.decode())
    assert to_page.startswith(pay_page.url)
    form = client.get(to_page)
    assert "300,00\xa0MAD" in form.content.decode()  # French money
    token = to_page.split("button=", 1)[1]
    response = client.post(pay_page.url, {**SHOPPER, "button": token, "amount": "1"})
    _, fields = redirect_fields(response.content.decode())
    values = dict(fields)
    payment = Payment.objects.get(oid=values["oid"])
    assert values["amount"] == "300.00"
    assert payment.reference == str(pay_page.pk)
    assert payment.data["button"]["page"] == article.pk
    # a token for another page, or a forged one, is refused
    assert client.post(pay_page.url, {**SHOPPER, "button": token + "x"}).status_code == 404


def test_inline_pay_button(
    cmi_settings: CMISettings, site: Site, client: Client, csrf_client: Client
) -> None:
    article = article_with_buttons(site, None)
    (url,) = button_urls(client.get(article.url).content.decode())
    assert url.startswith("/cmi/pay/?button=")
    form = client.get(url)
    assert "75,50\xa0MAD" in form.content.decode()  # French money
    token = url.split("button=", 1)[1]
    response = client.post("/cmi/pay/", {**SHOPPER, "button": token})
    _, fields = redirect_fields(response.content.decode())
    values = dict(fields)
    assert values["amount"] == "75.50"
    assert values["description"] == "Cotisation"
    payment = Payment.objects.get(oid=values["oid"])
    assert payment.reference == str(article.pk)
    callback = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=values
    )
    back = post_form(csrf_client, "/cmi/ok/", callback)
    assert back["Location"].startswith("/cmi/result/?r=")
    html = client.get(back["Location"]).content.decode()
    assert 'data-cmi-result="approved"' in html
    assert client.get("/cmi/pay/?button=forged").status_code == 404


# Receipts ---------------------------------------------------------------------------------


def test_receipt_sent_when_enabled(
    pay_page: PaymentPage,
    cmi_settings: CMISettings,
    client: Client,
    csrf_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    cmi_settings.send_receipts = True
    cmi_settings.save()
    payment, request_fields = pay(client, pay_page)
    callback = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_form(csrf_client, "/cmi/callback/", callback)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["amina@example.ma"]
    assert "150,00 MAD" in message.subject  # money in the payer's language (French)
    assert payment.oid in message.body
    assert message.body.startswith("Bonjour Amina Test,")  # the page's language: French


def test_no_receipt_by_default(
    pay_page: PaymentPage,
    client: Client,
    csrf_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payment, request_fields = pay(client, pay_page)
    callback = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_form(csrf_client, "/cmi/callback/", callback)
    assert mail.outbox == []


def test_old_wagtail_signals_fail_loudly_on_import() -> None:
    """The six Wagtail signals moved to cmi_django.signals: an old import says where."""
    with pytest.raises(ImportError, match=r"cmi_django\.signals\.payment_authorised"):
        from cmi_wagtail.signals import payment_authorised  # noqa: F401


def test_payment_page_is_none_for_another_platform(pay_page: PaymentPage, client: Client) -> None:
    payment, _ = pay(client, pay_page)
    assert payment_page(payment) == pay_page
    payment.platform = "oscar"  # a page id in another platform's data names no page of ours
    assert payment_page(payment) is None
