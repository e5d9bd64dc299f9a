"""HTTP endpoints: CMI's callback and a base for the okUrl/failUrl receivers.

Thin on purpose: read the POST body (at most :data:`~cmi_django.services.MAX_BODY`
bytes), hand it to :mod:`cmi_django.services`, render the answer.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from cmi_core import Reply
from cmi_django import services

__all__ = ["ReturnView", "callback_view"]

logger = logging.getLogger("cmi_django")


def _body(request: HttpRequest) -> bytes:
    return request.read(services.MAX_BODY + 1)


@csrf_exempt
@require_POST
def callback_view(request: HttpRequest) -> HttpResponse:
    """CMI's server-to-server callback (guide §4.2.1): plain-text reply, never a 500."""
    try:
        remote = request.META.get("REMOTE_ADDR", "")
        reply = services.handle_callback_body(_body(request), remote_addr=remote).reply
    except Exception:  # handle_callback_body never raises; this is the last guard
        logger.exception("CMI callback view failed")
        reply = Reply.FAILURE.value
    return HttpResponse(reply, content_type="text/plain; charset=utf-8")


@method_decorator(csrf_exempt, name="dispatch")
class ReturnView(View):
    """The shopper's okUrl/failUrl POST: verify, then 303 to a GET page.

    Subclasses set ``kind`` (``"ok"`` or ``"fail"``) and implement
    :meth:`get_redirect_url`, which may also store ``outcome.shopper_message`` (e.g. with
    Django's messages framework) before naming the page.
    """

    http_method_names: ClassVar[list[str]] = ["post"]
    kind: Literal["ok", "fail"] = "ok"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            fields = services.parse_body(_body(request))
        except services.BadBodyError:
            fields = {}
        remote = request.META.get("REMOTE_ADDR", "")
        outcome = services.handle_return(fields, kind=self.kind, remote_addr=remote)
        response = HttpResponseRedirect(self.get_redirect_url(outcome))
        response.status_code = 303
        return response

    def get_redirect_url(self, outcome: services.ReturnOutcome) -> str:
        raise NotImplementedError("ReturnView subclasses name the page to redirect to")
