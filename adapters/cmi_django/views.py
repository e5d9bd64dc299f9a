"""HTTP endpoints: CMI's callback and a base for the okUrl/failUrl receivers.

Thin on purpose: read the POST body (at most :data:`~cmi_django.services.MAX_BODY`
bytes), hand it to :mod:`cmi_django.services`, render the answer.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from cmi_core import Reply
from cmi_django import services
from cmi_django.afterreply import ReplyThenWork, collecting

__all__ = ["ReturnView", "UnconfirmedView", "callback_view", "see_other"]

logger = logging.getLogger("cmi_django")


def _body(request: HttpRequest) -> bytes:
    return request.read(services.MAX_BODY + 1)


# CMI may be called: never inside ATOMIC_REQUESTS' transaction (docs/django-layer.md)
@transaction.non_atomic_requests
@csrf_exempt
@require_POST
def callback_view(request: HttpRequest) -> HttpResponse:
    """CMI's server-to-server callback (guide §4.2.1): plain-text reply, never a 500.
    Bookkeeping nobody needs before CMI (:mod:`cmi_django.afterreply`) runs once the
    reply is written."""
    with collecting() as work:
        try:
            remote = request.META.get("REMOTE_ADDR", "")
            reply = services.handle_callback_body(_body(request), remote_addr=remote).reply
        except Exception:  # handle_callback_body never raises; this is the last guard
            logger.exception("CMI callback view failed")
            reply = Reply.FAILURE.value
    return ReplyThenWork(
        reply, content_type="text/plain; charset=utf-8", work=work, request=request
    )


def see_other(url: str) -> HttpResponse:
    """303 to ``url``: the browser GETs the page after the POST (no re-POST on reload)."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


# CMI may be called: never inside ATOMIC_REQUESTS' transaction (docs/django-layer.md)
@method_decorator(transaction.non_atomic_requests, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
class ReturnView(View):
    """The shopper's okUrl/failUrl POST: verify, then 303 to a GET page.

    Subclasses set ``kind`` (``"ok"`` or ``"fail"``; or the URL passes ``kind=``, as
    Saleor's one route for both does) and implement :meth:`get_redirect_url`, which may
    also store ``outcome.shopper_message`` (e.g. with Django's messages framework) before
    naming the page. It is called for *verified* POSTs only: an unverified one (no hash, a
    wrong one, an unknown oid) names a payment nobody proved is theirs, so it is sent to
    the neutral :meth:`get_unverified_url` page
    ("we could not confirm this payment"), with nothing to act on. A platform with no
    such page (Saleor: the storefront is elsewhere) overrides :meth:`unverified_response`;
    :meth:`get_redirect_url` may also answer None to send a verified POST there (e.g. a
    payment this platform cannot place).
    """

    http_method_names = ("post",)
    kind: Literal["ok", "fail"] = "ok"
    #: The URL name of the neutral page (e.g. ``"cmi_oscar:unconfirmed"``); when it does
    #: not resolve, ``cmi_django:unconfirmed``, then the site's root.
    unverified_url_name: str | None = None

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            fields = services.parse_body(_body(request))
        except services.BadBodyError:
            fields = {}
        remote = request.META.get("REMOTE_ADDR", "")
        self.kind = "fail" if kwargs.get("kind", self.kind) == "fail" else "ok"
        outcome = services.handle_return(fields, kind=self.kind, remote_addr=remote)
        url = None
        if outcome.verified and outcome.payment is not None:
            url = self.get_redirect_url(outcome)
        if url is None:
            return self.unverified_response(outcome)
        return see_other(url)

    def get_redirect_url(self, outcome: services.ReturnOutcome) -> str | None:
        raise NotImplementedError("ReturnView subclasses name the page to redirect to")

    def unverified_response(self, outcome: services.ReturnOutcome) -> HttpResponse:
        """303 to :meth:`get_unverified_url`: no payment, no shopper data."""
        return see_other(self.get_unverified_url())

    def get_unverified_url(self) -> str:
        """The neutral page for unverified POSTs: no payment, no shopper data."""
        for name in (self.unverified_url_name, "cmi_django:unconfirmed"):
            if name:
                try:
                    return reverse(name)
                except NoReverseMatch:
                    continue
        return "/"


class UnconfirmedView(TemplateView):
    """GET: "we could not confirm this payment" (fr/en/ar), showing nothing of any payment.

    Where :class:`ReturnView` sends okUrl/failUrl POSTs whose hash is missing or wrong.
    Override the template ``cmi_django/unconfirmed.html`` to dress it like the shop.
    """

    template_name = "cmi_django/unconfirmed.html"
    http_method_names = ("get", "head")
