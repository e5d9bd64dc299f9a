"""``cmi_reconcile`` when CMI's callback was lost, against the emulator's XML API.

The shopper pays on the emulator's page (``Browser``), whose callback is dropped (the
``drop`` fault switch); what happens next decides the case: the tab was closed (nothing
reaches the shop), the verified okUrl POST came back, the card was declined or the page
abandoned. Then the command asks the emulator's ORDERSTATUS, as cron would, 31 minutes
later. Transactional tests: the capture after a status-learned approval and the order
e-mail run in ``transaction.on_commit``, exactly as in production.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from cmi_django.models import CallbackLog, Payment
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from oscar.core.loading import get_model

from cmi_core.sandbox import Sandbox
from cmi_core.sandbox.storage import OrderRow
from tests.adapters.oscar.conftest import sandbox_payments
from tests.adapters.oscar.support import PRICE, post_form, start_payment
from tests.sandbox.support import APPROVED_CARD, Browser

Order = get_model("order", "Order")
Basket = get_model("basket", "Basket")

pytestmark = pytest.mark.django_db(transaction=True)

DECLINED_CARD = "4000000000000051"


@pytest.fixture(params=["auto", "manual"])
def mode(request: Any, settings: Any, sandbox: Sandbox) -> str:
    """The shop pays through the emulator (with its API user) in this capture mode."""
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url, capture_mode=request.param)
    return str(request.param)


def pay_without_callback(
    shopper: Client, product: Any, sandbox: Sandbox, card: str | None = APPROVED_CARD
) -> tuple[Payment, Browser]:
    """Checkout, then CMI's page with the callback dropped; ``card=None``: never paid."""
    payment, fields = start_payment(shopper, product)
    sandbox.set_fault("drop", oid=payment.oid)
    browser = Browser(sandbox)
    browser.open(list(fields.items()))
    if card is not None:
        browser.pay(card)
    return payment, browser


def reconcile(*options: str, later: bool = True) -> list[str]:
    """Cron, 31 minutes later: ``cmi_reconcile --platform oscar`` (default --older-than 30).

    Returns the lines it printed; ``later=False``: run it now, nothing backdated.
    """
    if later:
        Payment.objects.update(updated_at=timezone.now() - timedelta(minutes=31))
    out, err = StringIO(), StringIO()
    call_command("cmi_reconcile", "--platform", "oscar", *options, stdout=out, stderr=err)
    assert err.getvalue() == ""
    return out.getvalue().splitlines()


NOTHING_TO_CHECK = ["0 payment(s) to check", "done: 0 checked, 0 changed, 0 failed"]


def reconcile_changes_nothing(payment: Payment, mode: str) -> None:
    """A paid payment is left alone: in auto mode a captured one is not stuck; in manual
    mode CMI still says pre-authorised."""
    if mode == "auto":
        assert reconcile() == NOTHING_TO_CHECK
    else:
        assert reconcile() == [
            "1 payment(s) to check",
            f"{payment.oid}: unchanged (authorised)",
            "done: 1 checked, 0 changed, 0 failed",
        ]


def cmi_order(sandbox: Sandbox, oid: str) -> OrderRow:
    order = sandbox.order(oid)
    assert order is not None
    return order


def emulator_transactions(sandbox: Sandbox, oid: str) -> list[tuple[str, Decimal]]:
    return [(t.type, t.amount) for t in sandbox.store.transactions(cmi_order(sandbox, oid).id)]


def expected_at_cmi(mode: str) -> tuple[str, list[tuple[str, Decimal]]]:
    """The emulator's order state and transactions once the shop has done its part."""
    if mode == "auto":
        return "POST", [("PreAuth", PRICE), ("PostAuth", PRICE)]
    return "PRE", [("PreAuth", PRICE)]


def assert_one_order(payment: Payment, mode: str) -> Any:
    """One Oscar order, its CMI source, transactions and events as a callback makes them."""
    order = Order.objects.get()
    assert order.number == payment.reference
    assert order.total_incl_tax == payment.amount == PRICE
    assert Basket.objects.get(pk=payment.data["basket_id"]).status == Basket.SUBMITTED
    source = order.sources.get()
    assert (source.source_type.name, source.reference) == ("CMI", payment.oid)
    assert source.label == payment.masked_pan == "411111***1111"
    debited = PRICE if mode == "auto" else Decimal(0)
    assert (source.amount_allocated, source.amount_debited) == (PRICE, debited)
    txns = sorted(source.transactions.values_list("txn_type", "amount"))
    events = [(e.event_type.name, e.amount) for e in order.payment_events.order_by("id")]
    if mode == "auto":
        assert order.status == "Paid"
        assert txns == [("Authorise", PRICE), ("Debit", PRICE)]
        assert events == [("Authorised", PRICE), ("Paid", PRICE)]
    else:
        assert order.status == "Pending"
        assert txns == [("Authorise", PRICE)]
        assert events == [("Authorised", PRICE)]
    return order


def assert_paid(payment: Payment, mode: str) -> None:
    payment.refresh_from_db()
    assert payment.authorised_amount == PRICE
    if mode == "auto":
        assert (payment.state, payment.captured_amount) == ("captured", PRICE)
    else:
        assert (payment.state, payment.captured_amount) == ("authorised", 0)
    # Learned without a callback: manual from then on, so a late callback never captures.
    assert payment.capture_mode == "manual"


def test_tab_closed_reconcile_places_the_order_once(
    shopper: Client, product: Any, mode: str, sandbox: Sandbox, mailoutbox: list[Any]
) -> None:
    payment, _ = pay_without_callback(shopper, product, sandbox)
    assert cmi_order(sandbox, payment.oid).state == "PRE"  # CMI holds the funds
    dropped = sandbox.store.callbacks(cmi_order(sandbox, payment.oid).id)
    assert [c.status for c in dropped] == ["DROPPED"]
    payment.refresh_from_db()
    assert payment.state == "redirected"
    assert not Order.objects.exists()

    # Too recent for cron (updated less than 30 minutes ago): left alone.
    assert reconcile(later=False) == NOTHING_TO_CHECK

    # --dry-run asks CMI and says what it would do, and does nothing.
    assert reconcile("--dry-run") == [
        "1 payment(s) to check",
        f"{payment.oid}: would move redirected -> authorised",
        "done: 1 checked, 1 would change, 0 failed",
    ]
    payment.refresh_from_db()
    assert payment.state == "redirected"
    assert not payment.operations.exists()
    assert not Order.objects.exists()

    after = "captured" if mode == "auto" else "authorised"
    assert reconcile() == [
        "1 payment(s) to check",
        f"{payment.oid}: moved redirected -> {after}",
        "done: 1 checked, 1 changed, 0 failed",
    ]
    assert_paid(payment, mode)
    assert payment.trans_id == ""  # ORDERSTATUS's TransId is not kept (the callback's will be)
    order = assert_one_order(payment, mode)
    assert order.guest_email == "amina@example.ma"
    state, transactions = expected_at_cmi(mode)
    assert cmi_order(sandbox, payment.oid).state == state
    assert emulator_transactions(sandbox, payment.oid) == transactions
    operations = list(payment.operations.order_by("id").values_list("kind", "succeeded", "key"))
    if mode == "auto":
        assert operations == [("status", True, None), ("capture", True, "reconcile-capture")]
    else:
        assert operations == [("status", True, None)]
    assert len(mailoutbox) == 1  # Oscar's order-placed e-mail, once
    assert order.number in mailoutbox[0].body

    reconcile_changes_nothing(payment, mode)  # the next cron run
    assert_paid(payment, mode)
    assert_one_order(payment, mode)
    assert emulator_transactions(sandbox, payment.oid) == transactions
    assert payment.operations.filter(kind="capture").count() == (1 if mode == "auto" else 0)
    assert len(mailoutbox) == 1


def test_okurl_placed_the_order_then_reconcile_changes_nothing(
    shopper: Client, product: Any, mode: str, sandbox: Sandbox, mailoutbox: list[Any]
) -> None:
    payment, browser = pay_without_callback(shopper, product, sandbox)
    action, returned = browser.return_form()
    assert action.endswith("/cmi/ok/")
    assert post_form(shopper, "/cmi/ok/", dict(returned)).status_code == 303
    assert_paid(payment, mode)  # auto: captured through the API after the okUrl's commit
    trans_id = payment.trans_id
    assert trans_id == dict(returned)["TransId"]
    assert_one_order(payment, mode)
    state, transactions = expected_at_cmi(mode)
    assert emulator_transactions(sandbox, payment.oid) == transactions

    reconcile_changes_nothing(payment, mode)
    assert_paid(payment, mode)
    assert payment.trans_id == trans_id
    assert_one_order(payment, mode)
    assert cmi_order(sandbox, payment.oid).state == state
    assert emulator_transactions(sandbox, payment.oid) == transactions
    captures = list(payment.operations.filter(kind="capture").values_list("key", flat=True))
    assert captures == (["okurl-capture"] if mode == "auto" else [])
    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    ("card", "cmi_answer"),
    [
        pytest.param(DECLINED_CARD, "ERROR", id="declined"),
        pytest.param(None, None, id="abandoned"),
    ],
)
def test_nothing_approved_at_cmi_reconcile_places_no_order(
    shopper: Client,
    product: Any,
    mode: str,
    sandbox: Sandbox,
    *,
    mailoutbox: list[Any],
    card: str | None,
    cmi_answer: str | None,
) -> None:
    payment, _ = pay_without_callback(shopper, product, sandbox, card)
    at_cmi = sandbox.order(payment.oid)
    if card is None:
        assert at_cmi is None  # the card page was never submitted: CMI knows no order
    else:
        assert at_cmi is not None
        assert at_cmi.state == "DECL"  # no attempt approved

    for _ in range(2):
        assert reconcile() == [
            "1 payment(s) to check",
            f"{payment.oid}: unchanged (redirected)",
            "done: 1 checked, 0 changed, 0 failed",
        ]
    payment.refresh_from_db()
    # Nothing approved, and the lost decline callback is the one that counts declines.
    assert (payment.state, payment.authorised_amount, payment.declined_attempts) == (
        "redirected",
        0,
        0,
    )
    assert not Order.objects.exists()
    assert Basket.objects.get(pk=payment.data["basket_id"]).status == Basket.FROZEN
    checks = list(payment.operations.order_by("id"))
    assert [(o.kind, o.succeeded, o.error) for o in checks] == [("status", True, "")] * 2
    if cmi_answer is None:
        assert checks[0].response == {"state": None, "found": False}
    else:
        assert checks[0].response["state"] == cmi_answer
        assert checks[0].response["trans_stat"] == "D"
    assert not payment.operations.filter(kind="capture").exists()
    assert not mailoutbox
    if at_cmi is not None:
        assert emulator_transactions(sandbox, payment.oid) == [("PreAuth", PRICE)]


def test_late_callback_after_reconcile_is_a_duplicate(
    live_server: Any, product: Any, mode: str, sandbox: Sandbox, mailoutbox: list[Any]
) -> None:
    """The emulator's "Réessayer" sends the dropped callback to the live shop afterwards."""
    shopper = Client(HTTP_HOST=urlsplit(live_server.url).netloc)  # callbackURL: the live shop
    payment, _ = pay_without_callback(shopper, product, sandbox)
    reconcile()
    assert_paid(payment, mode)
    state, transactions = expected_at_cmi(mode)
    at_cmi = cmi_order(sandbox, payment.oid)
    (dropped,) = sandbox.store.callbacks(at_cmi.id)
    assert dropped.url == f"{live_server.url}/cmi/callback/"

    for _ in range(2):  # late, then CMI (or staff) sends it once more
        retry = requests.post(
            f"{sandbox.base_url}/merchant/callback/{dropped.id}/retry",
            allow_redirects=False,
            timeout=10,
        )
        assert retry.status_code in (302, 303)
    sent = sandbox.store.callbacks(at_cmi.id)[1:]
    assert [(c.status, c.reply) for c in sent] == [("OK", "APPROVED")] * 2
    assert not any("captured" in c.note or "no capture" in c.note for c in sent)

    logs = list(CallbackLog.objects.filter(kind="callback").order_by("id"))
    assert [(log.verified, log.outcome, log.reply) for log in logs] == [
        (True, "duplicate", "APPROVED")
    ] * 2
    assert_paid(payment, mode)
    # The callback's own TransId is recorded now (ORDERSTATUS's was not kept).
    assert payment.trans_id == dict(dropped.fields)["TransId"]
    assert_one_order(payment, mode)
    assert cmi_order(sandbox, payment.oid).state == state
    assert emulator_transactions(sandbox, payment.oid) == transactions
    assert payment.operations.filter(kind="capture").count() == (1 if mode == "auto" else 0)
    assert len(mailoutbox) == 1
