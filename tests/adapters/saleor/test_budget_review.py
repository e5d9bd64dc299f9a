"""Review of transactionProcess's budget (review9): a report Saleor records once per send
is never cut mid-flight by the time Saleor waits for the webhook."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from cmi_saleor import graphql
from cmi_saleor.models import EventReport
from django.core.management import call_command
from django.test import Client

from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import FakeSaleor, session_payload
from tests.adapters.saleor.test_sessions import PROCESS, callback_for, initialize, post_callback

pytestmark = pytest.mark.django_db(transaction=True)


class _LateAnswers:
    """The app's HTTP session to Saleor, where an answer that comes after the POST's
    timeout is a read timeout: Saleor handled (and recorded) the report, the app never
    learns it."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        started = time.monotonic()
        response = self._session.post(url, **kwargs)
        if time.monotonic() - started > kwargs["timeout"]:
            raise requests.ReadTimeout("read timed out")
        return response


def test_an_info_report_is_not_cut_mid_flight_then_sent_again(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any, monkeypatch: Any
) -> None:
    """An owed ``INFO`` (a decline Saleor did not record) was sent by transactionProcess
    with its timeout cut to what the budget left (down to a second). A Saleor slower than
    that recorded it, the app timed out, kept it owed and the sweeper sent it again:
    Saleor, which never deduplicates ``INFO``, showed the decline twice. Such a report now
    starts inside the budget only when Saleor's whole timeout fits in what is left."""
    transaction, answer = initialize(client, saleor)
    saleor.report_failure = "http"
    declined = callback_for(answer, approved=False, trans_id="TX-D", err_code="ISO8583-05")
    assert post_callback(client, declined) == "APPROVED"
    assert [r.event_type for r in EventReport.objects.all()] == ["INFO"]
    saleor.report_failure = None
    real = graphql._http()
    monkeypatch.setattr(graphql, "_http", lambda: _LateAnswers(real))
    saleor.on_report = lambda variables: time.sleep(1.7)  # Saleor slower than the budget
    settings.CMI_SALEOR_ACTION_WITHIN = 1.5
    before = len(saleor.reports)
    send(client, saleor, PROCESS, session_payload(PROCESS, transaction)).json()
    saleor.on_report = None
    call_command("cmi_saleor_reports", stdout=_Null())
    assert not EventReport.objects.exists()
    # Saleor got the decline once (each INFO it receives is one more event in its history)
    assert [r["type"] for r in saleor.reports[before:]] == ["INFO"]


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
