"""Review 8: the bookkeeping CMI's callback leaves until after its reply
(:mod:`cmi_django.afterreply`), attacked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client

from tests.adapters.saleor.standin import FakeSaleor
from tests.adapters.saleor.test_sessions import callback_for, initialize

pytestmark = pytest.mark.django_db(transaction=True)

_MODULE = "tests.adapters.saleor.test_money_review8"


class ReplacingMiddleware:
    """A shop's middleware that answers with a response of its own (a copy of the view's):
    the view's response is dropped, never closed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        return HttpResponse(response.content, content_type=response["Content-Type"])


class FailingMiddleware:
    """A shop's middleware that raises once the view answered: Django answers 500 with a
    response of its own, the view's is never closed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.get_response(request)
        raise RuntimeError("a shop's middleware failed")


@pytest.mark.parametrize("middleware", ["ReplacingMiddleware", "FailingMiddleware"])
def test_a_delivered_report_is_forgotten_when_a_middleware_drops_the_callbacks_response(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any, middleware: str
) -> None:
    """The delivered report's row was deleted only by the view's own response's close():
    a middleware that replaced that response (or raised, so that Django answered with its
    own) left the row claimed for the whole lease, and every later report for the same
    Saleor transaction made meanwhile stopped behind it, held until the next sweep
    (``cmi_saleor_reports``). The work now runs when the request's final response closes."""
    from cmi_saleor.models import EventReport

    _, answer = initialize(client, saleor)
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{_MODULE}.{middleware}"]
    shop = Client(raise_request_exception=False)
    shop.post(
        "/cmi/callback",
        data=urlencode(callback_for(answer, trans_id="TX-1")),
        content_type="application/x-www-form-urlencoded",
    )
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"]
    assert not EventReport.objects.exists()  # recorded by Saleor: no longer owed
