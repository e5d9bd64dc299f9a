"""The Wagtail admin: editors creating payment pages, the payments viewset and its actions.

Actions run against the real emulator's XML API (``Sandbox(port=0)``); the payments they
act on were paid through the emulator by a scripted shopper over real HTTP (the Wagtail
site runs in pytest-django's ``live_server``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import Payment
from cmi_wagtail.models import PaymentPage
from django.test import Client
from django.urls import reverse
from wagtail.models import Page, Site
from wagtail.test.utils.form_data import nested_form_data, rich_text

from cmi_core import PaymentState
from cmi_core.sandbox import Sandbox
from tests.sandbox.support import Browser

from .conftest import Shopper, configure, redirect_fields

SHOPPER = {"name": "Amina Test", "email": "amina@example.ma"}


@pytest.fixture
def admin_client(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.ma", "pw")
    client.force_login(user)
    return client


# Editors ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_editor_creates_a_payment_page(admin_client: Client, site: Site) -> None:
    url = reverse("wagtailadmin_pages:add", args=["cmi_wagtail", "paymentpage", site.root_page.pk])
    form = admin_client.get(url)
    assert form.status_code == 200
    data = nested_form_data(
        {
            "title": "Don libre",
            "slug": "don-libre",
            "intro": rich_text("<p>Soutenez-nous.</p>"),
            "amount_rule": "free",
            "min_amount": "20",
            "max_amount": "5000",
            "preset_amounts": "",
            "fixed_amount": "",
            "currency": "504",
            "description": "",
            "ask_name": "on",
            "ask_phone": "on",
            "submit_label": "Donner",
            "thank_you_text": rich_text("<p>Merci !</p>"),
            "failure_text": rich_text("<p>Hélas.</p>"),
            "action-publish": "publish",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    page = PaymentPage.objects.get(slug="don-libre")
    assert page.live
    assert page.amount_rule == "free"
    assert page.max_amount == Decimal(5000)
    assert page.ask_phone
    public = Client().get(page.url).content.decode()
    assert 'name="phone"' in public
    assert "Donner" in public


@pytest.mark.django_db
def test_editor_gets_the_amount_rule_errors(admin_client: Client, site: Site) -> None:
    url = reverse("wagtailadmin_pages:add", args=["cmi_wagtail", "paymentpage", site.root_page.pk])
    data = nested_form_data(
        {
            "title": "Sans montant",
            "slug": "sans-montant",
            "intro": rich_text(""),
            "amount_rule": "fixed",
            "fixed_amount": "",
            "currency": "504",
            "thank_you_text": rich_text(""),
            "failure_text": rich_text(""),
            "action-publish": "publish",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert not PaymentPage.objects.filter(slug="sans-montant").exists()


# The payments listing ----------------------------------------------------------------------


def make(state: str, amount: str, reference: str, title: str, platform: str = "wagtail") -> Payment:
    payment, _ = services.create_payment(
        platform=platform,
        reference=reference,
        order={
            "amount": Decimal(amount),
            "email": "a@example.ma",
            "billing_name": "A",
            "ok_url": "https://x.example.ma/ok",
            "fail_url": "https://x.example.ma/fail",
            "callback_url": "https://x.example.ma/cb",
        },
        config_key="default",
        data={"page_id": int(reference), "page_title": title, "shopper": {"name": "A"}},
    )
    Payment.objects.filter(pk=payment.pk).update(state=state)
    return payment


@pytest.fixture
def listed(db: None, settings: Any) -> list[Payment]:
    settings.CMI_PAYMENTS = {"default": {"CLIENT_ID": "600000001", "STORE_KEY": "k"}}
    return [
        make("captured", "100", "11", "Adhésion"),
        make("redirected", "250", "11", "Adhésion"),
        make("captured", "900", "12", "Don"),
        make("captured", "100", "13", "Oscar basket", platform="oscar"),
    ]


INDEX = "/admin/cmi_payments/"


def oids_in(html: str, payments: list[Payment]) -> set[str]:
    return {p.oid for p in payments if p.oid in html}


def test_listing_shows_wagtail_payments_only(admin_client: Client, listed: list[Payment]) -> None:
    html = admin_client.get(INDEX).content.decode()
    assert oids_in(html, listed) == {p.oid for p in listed[:3]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=captured", {0, 2}),
        ("page=11", {0, 1}),
        ("amount_min=200&amount_max=1000", {1, 2}),
        ("created_at_from=2000-01-01&created_at_to=2999-01-01", {0, 1, 2}),
        ("created_at_from=2999-01-01", set()),
    ],
)
def test_listing_filters(
    admin_client: Client, listed: list[Payment], query: str, expected: set[int]
) -> None:
    response = admin_client.get(f"{INDEX}?{query}")
    assert response.status_code == 200
    assert oids_in(response.content.decode(), listed) == {listed[i].oid for i in expected}


def test_csv_export(admin_client: Client, listed: list[Payment]) -> None:
    response = admin_client.get(f"{INDEX}?export=csv&state=captured")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "cmi-payments.csv" in response["Content-Disposition"]
    content = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(content)))
    oids = {row[0] for row in rows[1:]}
    assert oids == {listed[0].oid, listed[2].oid}
    header = [h.lower() for h in rows[0]]
    assert "state" in " ".join(header) or "état" in " ".join(header)


def test_listing_needs_permission(
    client: Client, listed: list[Payment], django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("editor", "e@example.ma", "pw")
    user.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(user)
    response = client.get(INDEX)
    assert response.status_code in (302, 403)
    inspect = f"{INDEX}action/{listed[0].pk}/refresh/"
    assert client.post(inspect).status_code in (302, 403)


# Actions against the emulator -------------------------------------------------------------


@pytest.fixture
def pay_through_sandbox(
    live_server: Any, sandbox: Sandbox, site: Site, make_page: Callable[..., PaymentPage]
) -> Callable[..., Payment]:
    """Pay a new payment page through the emulator (manual capture: it stays authorised)."""
    configure(site, base_url=sandbox.base_url, capture_mode="manual")

    def pay(*, follow_return: bool = True, amount: str = "150.00") -> Payment:
        page = make_page(fixed_amount=Decimal(amount))
        response = Shopper(live_server.url).submit(page.url, SHOPPER)
        _, fields = redirect_fields(response.text)
        browser = Browser(sandbox)
        browser.open(fields)
        browser.pay()
        if follow_return:
            browser.follow_return()
        return Payment.objects.get(oid=dict(fields)["oid"])

    return pay


def act(
    client: Client, payment: Payment, action: str, amount: str = "", key: str = ""
) -> list[str]:
    """Run a staff action, confirmed (as the confirmation step's button posts it)."""
    url = f"{INDEX}action/{payment.pk}/{action}/"
    data = {"amount": amount} if amount else {}
    data["confirmed"] = "1"
    if key:
        data["key"] = key
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def form_key(client: Client, payment: Payment, action: str) -> str:
    """The idempotency key the inspect page's ``action`` form carries (fresh per render)."""
    html = client.get(f"{INDEX}inspect/{payment.pk}/").content.decode()
    match = re.search(rf'name="key" value="({action}-[0-9a-f]+)"', html)
    assert match, f"no {action} form"
    return match.group(1)


@pytest.mark.django_db(transaction=True)
def test_capture_then_partial_refund(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client, sandbox: Sandbox
) -> None:
    payment = pay_through_sandbox()
    assert payment.state == PaymentState.AUTHORISED.value
    assert sandbox.order(payment.oid).state == "PRE"
    inspect = admin_client.get(f"{INDEX}inspect/{payment.pk}/").content.decode()
    assert 'data-cmi-action="capture"' in inspect
    assert "<code>APPROVED</code>" in inspect  # the reply sent (manual capture)
    assert "ACTION=POSTAUTH" not in inspect

    messages = act(admin_client, payment, "capture", "150.00")
    payment.refresh_from_db()
    assert payment.state == PaymentState.CAPTURED.value, messages
    assert sandbox.order(payment.oid).state == "POST"

    messages = act(admin_client, payment, "refund", "40.00")
    payment.refresh_from_db()
    assert payment.state == PaymentState.PARTIALLY_REFUNDED.value, messages
    assert payment.refunded_amount == Decimal("40.00")
    assert sandbox.order(payment.oid).state == "RFND"
    kinds = list(payment.operations.order_by("id").values_list("kind", "succeeded"))
    assert kinds == [("capture", True), ("refund", True)]

    messages = act(admin_client, payment, "refund", "500.00")
    assert any("500" in m or "refund" in m.lower() or "rembours" in m.lower() for m in messages)
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("40.00")


@pytest.mark.django_db(transaction=True)
def test_refund_form_sent_twice_refunds_once(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client, sandbox: Sandbox
) -> None:
    payment = pay_through_sandbox()
    act(admin_client, payment, "capture", "150.00", key=form_key(admin_client, payment, "capture"))
    key = form_key(admin_client, payment, "refund")
    assert key != form_key(admin_client, payment, "refund")  # a fresh key per render
    act(admin_client, payment, "refund", "40.00", key=key)
    messages = act(admin_client, payment, "refund", "40.00", key=key)  # the same form again
    assert any("déjà été faite" in m for m in messages), messages  # "already done", in French
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("40.00")
    assert payment.operations.filter(kind="refund").count() == 1
    row = sandbox.order(payment.oid)
    assert row.refunded == Decimal("40.00")


@pytest.mark.django_db(transaction=True)
def test_refunded_and_voided_signals(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client
) -> None:
    from cmi_django import signals
    from cmi_wagtail.models import payment_page

    calls: list[tuple[str, dict[str, Any]]] = []
    connected = []
    for name in ("payment_refunded", "payment_voided"):

        def handler(sender: Any, _name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            calls.append((_name, {"sender": sender, **kwargs}))

        getattr(signals, name).connect(handler, weak=False)
        connected.append((getattr(signals, name), handler))
    try:
        refunded = pay_through_sandbox()
        act(admin_client, refunded, "capture", "150.00")
        act(admin_client, refunded, "refund", "40.00")
        voided = pay_through_sandbox()
        act(admin_client, voided, "void")
    finally:
        for signal, handler in connected:
            signal.disconnect(handler)
    assert [name for name, _ in calls] == ["payment_refunded", "payment_voided"]
    refund, void = calls[0][1], calls[1][1]
    assert (refund["payment"].pk, refund["amount"]) == (refunded.pk, Decimal("40.00"))
    assert isinstance(payment_page(refund["payment"]), PaymentPage)
    assert payment_page(refund["payment"]).pk == refunded.data["page_id"]
    assert void["payment"].pk == voided.pk
    assert isinstance(payment_page(void["payment"]), PaymentPage)
    assert payment_page(void["payment"]).pk == voided.data["page_id"]


@pytest.mark.django_db
def test_action_buttons_follow_allowed_actions(admin_client: Client, listed: list[Payment]) -> None:
    needs_attention = listed[1]
    Payment.objects.filter(pk=needs_attention.pk).update(
        state="needs_attention", attention_reason="checked by hand"
    )
    html = admin_client.get(f"{INDEX}inspect/{needs_attention.pk}/").content.decode()
    assert 'data-cmi-action="void"' in html  # VOID is allowed from NEEDS_ATTENTION
    assert 'data-cmi-action="capture"' not in html
    assert 'data-cmi-action="refund"' not in html
    assert 'data-cmi-action="refresh"' in html


@pytest.mark.django_db(transaction=True)
def test_void(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client, sandbox: Sandbox
) -> None:
    payment = pay_through_sandbox()
    messages = act(admin_client, payment, "void")
    payment.refresh_from_db()
    assert payment.state == PaymentState.VOIDED.value, messages
    assert sandbox.order(payment.oid).state == "VOID"
    messages = act(admin_client, payment, "capture", "150.00")
    payment.refresh_from_db()
    assert payment.state == PaymentState.VOIDED.value
    assert messages  # the refusal is shown


@pytest.mark.django_db(transaction=True)
def test_refresh_from_cmi(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client, sandbox: Sandbox
) -> None:
    sandbox.set_fault("drop", client_id="600000001")
    try:
        payment = pay_through_sandbox(follow_return=False)
    finally:
        sandbox.clear_faults()
    assert payment.state == PaymentState.REDIRECTED.value  # no callback, no return
    act(admin_client, payment, "refresh")
    payment.refresh_from_db()
    assert payment.state == PaymentState.AUTHORISED.value
    assert payment.operations.filter(kind="status", succeeded=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_cmi_refusal_is_an_admin_message(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client, site: Site
) -> None:
    payment = pay_through_sandbox()
    from cmi_wagtail.models import CMISettings

    settings = CMISettings.objects.get(site=site)
    settings.api_password = "wrong-password"
    settings.save()
    messages = act(admin_client, payment, "capture", "150.00")
    assert any("CORE-2001" in m for m in messages), messages
    payment.refresh_from_db()
    assert payment.state == PaymentState.AUTHORISED.value
    assert payment.operations.filter(kind="capture", succeeded=False).count() == 1


@pytest.mark.django_db
def test_page_is_in_wagtail_explorer(admin_client: Client, site: Site) -> None:
    page = site.root_page.add_child(
        instance=PaymentPage(title="P", slug="p", fixed_amount=Decimal(10))
    )
    response = admin_client.get(reverse("wagtailadmin_pages:edit", args=[page.pk]))
    assert response.status_code == 200
    assert Page.objects.filter(pk=page.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_inspect_log_in_the_editors_language(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client, admin_user: Any
) -> None:
    """The payment log's kinds and outcomes are words in the admin's language (issue 13)."""
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(admin_user)
    profile.preferred_language = "fr"
    profile.save()
    payment = pay_through_sandbox()
    act(admin_client, payment, "capture", "150.00")
    html = admin_client.get(f"{INDEX}inspect/{payment.pk}/").content.decode()
    html = html.replace("&#x27;", "'")
    callbacks = html.split("data-cmi-callbacks")[1].split("</table>")[0]
    assert "<td>rappel du CMI</td>" in callbacks
    assert "<td>accepté, à encaisser par l'équipe</td>" in callbacks
    operations = html.split("data-cmi-operations")[1].split("</table>")[0]
    assert "<td>encaissement</td>" in operations
    assert "<td>capture</td>" not in operations


def test_inspect_names_the_payers_language(
    pay_through_sandbox: Callable[..., Payment], admin_client: Client
) -> None:
    """The payer's language is shown by its name, not as a code (issue 13)."""
    payment = pay_through_sandbox()
    html = admin_client.get(f"{INDEX}inspect/{payment.pk}/").content.decode()
    name = {"fr": "Français", "en": "English", "ar": "العربية"}[payment.lang]
    assert name in html
