"""Reports to Saleor are owed, then sent after the commit (issue 16, goal 3).

The payment change and the report it owes Saleor (:class:`cmi_saleor.models.EventReport`)
commit together; the report is sent after the commit, never under the payment's lock or
an open write transaction, and what Saleor did not record goes out later, in order, once.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django.models import Payment
from cmi_saleor.models import EventReport
from cmi_saleor.reports import deliver
from django.core.management import call_command
from django.db import DatabaseError, connection, connections
from django.test import Client
from django.test.client import FakePayload
from django.utils import timezone

from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import FakeSaleor, session_payload
from tests.adapters.saleor.test_sessions import PROCESS, callback_for, initialize, post_callback

pytestmark = pytest.mark.django_db(transaction=True)


def from_another_connection(query: Any) -> Any:
    """``query()`` run in another thread, on its own database connection."""
    found: list[Any] = []

    def run() -> None:
        try:
            found.append(query())
        except Exception as exc:  # noqa: BLE001 - the test reports what happened
            found.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return found[0]


def test_the_report_goes_out_after_the_commit(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """While Saleor handles the report, no transaction is open in the app and the payment
    is already committed: another connection reads it captured (on SQLite, before issue
    16, every other writer waited for Saleor's answer behind the callback's transaction)."""
    transaction, answer = initialize(client, saleor)
    seen: list[Any] = []

    def during_report(variables: dict[str, Any]) -> None:
        state = from_another_connection(lambda: Payment.objects.get().state)
        seen.append((variables["type"], connection.in_atomic_block, state))

    saleor.on_report = during_report
    assert post_callback(client, callback_for(answer, trans_id="TX-1")) == "ACTION=POSTAUTH"
    # sent inside the request, before CMI got its reply
    assert seen == [("CHARGE_SUCCESS", False, "captured")]
    assert not EventReport.objects.exists()  # recorded: nothing owed
    assert saleor.reports[0]["id"] == transaction["id"]
    assert saleor.amounts(transaction["id"])["charged"] == Decimal("120.50")
    # the link to the payment in this app's admin
    pk = Payment.objects.get().pk
    url = f"https://cmi-app.example.ma/admin/cmi_django/payment/{pk}/change/"
    assert saleor.reports[0]["externalUrl"] == url


def test_owed_reports_go_out_in_order_before_the_next_one(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """A decline reported while Saleor was down is sent before the approval that follows
    (Saleor's amounts depend on the order of its events), each once."""
    transaction, answer = initialize(client, saleor)
    saleor.report_failure = "http"
    declined = callback_for(answer, approved=False, trans_id="TX-D", err_code="ISO8583-05")
    assert post_callback(client, declined) == "APPROVED"
    saleor.report_failure = None
    assert post_callback(client, callback_for(answer, trans_id="TX-A")) == "ACTION=POSTAUTH"
    sent = [(r["type"], r["pspReference"]) for r in saleor.reports]
    assert sent == [("INFO", "TX-D"), ("INFO", "TX-D"), ("CHARGE_SUCCESS", "TX-A")]
    assert not EventReport.objects.exists()
    assert [e[:2] for e in saleor.events[transaction["id"]][1:]] == [
        ("INFO", "TX-D"),
        ("CHARGE_SUCCESS", "TX-A"),
    ]


def test_a_later_report_waits_for_the_one_saleor_refused(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Saleor refuses the first report of a transaction: the next one is not sent ahead
    of it; the command sends both, in order, then nothing more."""
    transaction, answer = initialize(client, saleor)
    saleor.report_failure = "errors"
    declined = callback_for(answer, approved=False, trans_id="TX-D", err_code="ISO8583-05")
    assert post_callback(client, declined) == "APPROVED"
    assert post_callback(client, callback_for(answer, trans_id="TX-A")) == "ACTION=POSTAUTH"
    # the approval's delivery tried the older INFO first, and stopped there
    assert [r["type"] for r in saleor.reports] == ["INFO", "INFO"]
    assert EventReport.objects.count() == 2
    assert EventReport.objects.filter(claimed_until__isnull=False).count() == 0  # released
    saleor.report_failure = None
    call_command("cmi_saleor_reports", stdout=(out := _Output()))
    assert "2 report(s) sent to Saleor, 0 still owed" in out.text
    assert [r["type"] for r in saleor.reports[2:]] == ["INFO", "CHARGE_SUCCESS"]
    call_command("cmi_saleor_reports", stdout=_Output())
    assert len(saleor.reports) == 4
    assert saleor.amounts(transaction["id"])["charged"] == Decimal("120.50")


def test_a_report_lost_to_a_crash_is_sent_after_its_lease(
    client: Client, saleor: FakeSaleor, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process stops between the commit and the send: the report is owed, held by the
    lost process for its lease (no one sends it twice meanwhile), then sent by the next
    sender, once."""
    transaction, answer = initialize(client, saleor)
    with monkeypatch.context() as patched:  # the process dies right after the commit
        patched.setattr("cmi_saleor.reports.deliver", lambda *a, **k: 0)
        assert post_callback(client, callback_for(answer, trans_id="TX-9")) == "ACTION=POSTAUTH"
    owed = EventReport.objects.get()
    assert owed.claimed_until is not None
    assert deliver(owed.mapping_id) == 0  # still held by the lost process
    assert saleor.reports == []
    EventReport.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert deliver(owed.mapping_id) == 1
    assert deliver(owed.mapping_id) == 0
    assert [r["pspReference"] for r in saleor.reports] == ["TX-9"]
    # Saleor's own process call finds nothing owed and answers from the payment
    process = send(client, saleor, PROCESS, session_payload(PROCESS, transaction)).json()
    assert process["result"] == "CHARGE_SUCCESS"
    assert len(saleor.reports) == 1


def test_a_report_sent_twice_is_recorded_once(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """A sender that stopped after Saleor recorded the report but before it deleted the
    row: the report goes again and Saleor answers alreadyProcessed (same type and
    pspReference): one event, and the row is gone."""
    transaction, answer = initialize(client, saleor)
    saleor.report_failure = "http"  # keep the row: it is the one whose deletion was lost
    assert post_callback(client, callback_for(answer, trans_id="TX-5")) == "ACTION=POSTAUTH"
    saleor.report_failure = None
    owed = EventReport.objects.get()
    saleor.recorded[("CHARGE_SUCCESS", "TX-5", "120.50", transaction["id"])] = "ev"
    saleor.events[transaction["id"]].append(("CHARGE_SUCCESS", "TX-5", Decimal("120.50")))
    assert deliver(owed.mapping_id) == 1
    assert saleor.reports[-1]["pspReference"] == "TX-5"
    charges = [e for e in saleor.events[transaction["id"]] if e[0] == "CHARGE_SUCCESS"]
    assert charges == [("CHARGE_SUCCESS", "TX-5", Decimal("120.50"))]
    assert not EventReport.objects.exists()


def test_staff_see_what_saleor_is_owed_and_why(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    from django.contrib.auth.models import User

    _, answer = initialize(client, saleor)
    saleor.report_failure = "http"
    assert post_callback(client, callback_for(answer, trans_id="TX-4")) == "ACTION=POSTAUTH"
    client.force_login(User.objects.create_superuser("admin", "admin@example.ma", "pw"))
    page = client.get("/admin/cmi_saleor/eventreport/")
    assert page.status_code == 200
    assert b"CHARGE_SUCCESS" in page.content
    assert b"Saleor API answered HTTP 500" in page.content
    owed = EventReport.objects.get()
    assert client.get(f"/admin/cmi_saleor/eventreport/{owed.pk}/change/").status_code == 200


class _Output:
    """A ``stdout`` for call_command that keeps what was written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_a_report_is_not_claimed_again_while_its_send_may_still_run(
    client: Client, saleor: FakeSaleor, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: a send may last two attempts (a kept-alive connection Saleor closed is
    tried again), each up to the connect and the read timeout: 4 x CMI_SALEOR_HTTP_TIMEOUT.
    A lease shorter than that lets a second sender claim the report while the first is
    still sending it: Saleor records an INFO event (and an *_ACTION_REQUIRED one) once per
    send, it deduplicates only the other types."""
    from cmi_saleor import conf, reports

    _, answer = initialize(client, saleor)
    with monkeypatch.context() as patched:  # the first sender holds it, still sending
        patched.setattr("cmi_saleor.reports.deliver", lambda *a, **k: 0)
        post_callback(client, callback_for(answer, trans_id="TX-7"))
    owed = EventReport.objects.get()
    assert owed.claimed_until is not None
    in_flight = timedelta(seconds=4 * conf.http_timeout())  # the longest send
    later = timezone.now() + in_flight - timedelta(seconds=1)
    monkeypatch.setattr(reports.timezone, "now", lambda: later)
    assert deliver(owed.mapping_id) == 0  # still the first sender's
    assert saleor.reports == []


def _callback_reply(fields: dict[str, str]) -> Any:
    """CMI's callback through Django's handler up to its reply: the response, not closed
    yet (a WSGI server closes it once the reply is written)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    body = urlencode(fields).encode()
    environ = RequestFactory()._base_environ(  # a WSGI environ as a server builds it
        PATH_INFO="/cmi/callback",
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": FakePayload(body)},
    )
    started: list[str] = []
    response = WSGIHandler()(environ, lambda status, headers, exc_info=None: started.append(status))
    assert started == ["200 OK"]
    return response


def test_the_delivered_report_is_forgotten_once_cmi_has_its_reply(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Issue 16: CMI is answered as soon as what it must know is committed. The report is
    sent to Saleor before the reply (the shopper's storefront asks Saleor next); deleting
    the delivered report's row is bookkeeping nobody needs before CMI: it runs when the
    server closes the response, once the reply is written."""
    _, answer = initialize(client, saleor)
    response = _callback_reply(callback_for(answer, trans_id="TX-1"))
    assert b"".join(response) == b"ACTION=POSTAUTH"
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"]  # before the reply
    (owed,) = EventReport.objects.all()  # still claimed by the sender: nobody sends it again
    assert owed.claimed_until is not None
    assert owed.claimed_until > timezone.now()
    assert deliver(owed.mapping_id) == 0
    response.close()
    assert not EventReport.objects.exists()
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"]


def test_an_info_report_is_forgotten_before_the_reply(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """A declined attempt is reported as ``INFO``, which Saleor records once per send
    (no ``alreadyProcessed``): its row is deleted before the reply, as before, so that a
    process dying after the reply cannot make Saleor show the decline twice."""
    _, answer = initialize(client, saleor)
    declined = callback_for(answer, approved=False, trans_id="TX-D", err_code="ISO8583-05")
    response = _callback_reply(declined)
    assert b"".join(response) == b"APPROVED"
    assert [r["type"] for r in saleor.reports] == ["INFO"]
    assert not EventReport.objects.exists()
    response.close()


def test_a_process_dying_after_the_reply_leaves_a_report_saleor_already_has(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """The process dies between the reply and its close(): the delivered report's row
    stays, claimed. Once its lease is over it is sent again, Saleor answers
    ``alreadyProcessed``, and it is forgotten: Saleor's books count the charge once."""
    transaction, answer = initialize(client, saleor)
    response = _callback_reply(callback_for(answer, trans_id="TX-1"))
    assert b"".join(response) == b"ACTION=POSTAUTH"  # and never closed
    EventReport.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    call_command("cmi_saleor_reports", stdout=_Output())
    assert not EventReport.objects.exists()
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS", "CHARGE_SUCCESS"]
    assert saleor.amounts(transaction["id"])["charged"] == Decimal("120.50")


def test_bookkeeping_failing_after_the_reply_is_logged_not_raised(
    client: Client,
    saleor: FakeSaleor,
    channel: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reply is already written when the work after it runs: a database error there
    is logged (the row stays, sent again later, as above), never raised into the server."""
    from cmi_saleor import reports

    def broken(pk: int) -> None:
        raise DatabaseError("the database went away")

    monkeypatch.setattr(reports, "_delete", broken)
    _, answer = initialize(client, saleor)
    response = _callback_reply(callback_for(answer, trans_id="TX-1"))
    assert b"".join(response) == b"ACTION=POSTAUTH"
    with caplog.at_level("ERROR", logger="cmi_django"):
        response.close()
    assert "after CMI's reply failed" in caplog.text
    assert EventReport.objects.count() == 1


def test_transaction_process_sends_what_is_owed_only_while_saleor_waits(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    """transactionProcess sends Saleor what it is owed before answering. Each send used
    to take as long as Saleor's API did, however many were owed, past the time Saleor
    waits for the webhook. The sends now share the call's budget
    (``CMI_SALEOR_ACTION_WITHIN``): none starts with less than a second left, and what is
    not sent stays owed, unclaimed, for the sweeper, which sends it once."""
    transaction, answer = initialize(client, saleor)
    saleor.report_failure = "http"
    declined = callback_for(answer, approved=False, trans_id="TX-D", err_code="ISO8583-05")
    assert post_callback(client, declined) == "APPROVED"
    assert post_callback(client, callback_for(answer, trans_id="TX-A")) == "ACTION=POSTAUTH"
    assert EventReport.objects.count() == 2  # INFO, then CHARGE_SUCCESS, owed
    saleor.report_failure = None
    saleor.on_report = lambda variables: time.sleep(0.8)  # a slow Saleor API
    settings.CMI_SALEOR_ACTION_WITHIN = 1.5
    settings.CMI_SALEOR_HTTP_TIMEOUT = 1  # the INFO fits whole (test_budget_review.py)
    before = len(saleor.reports)
    started = time.monotonic()
    process = send(client, saleor, PROCESS, session_payload(PROCESS, transaction)).json()
    took = time.monotonic() - started
    assert process["result"] == "CHARGE_SUCCESS"
    assert took < 1.4, f"transactionProcess took {took:.2f}s of a 1.5 s budget"
    assert [r["type"] for r in saleor.reports[before:]] == ["INFO"]
    (owed,) = EventReport.objects.all()
    assert (owed.event_type, owed.claimed_until) == ("CHARGE_SUCCESS", None)
    saleor.on_report = None
    call_command("cmi_saleor_reports", stdout=(out := _Output()))
    assert "1 report(s) sent to Saleor, 0 still owed" in out.text
    assert [r["type"] for r in saleor.reports[before:]] == ["INFO", "CHARGE_SUCCESS"]
    assert saleor.amounts(transaction["id"])["charged"] == Decimal("120.50")
