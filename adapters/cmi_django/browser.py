"""What the shopper's browser is handed, written once for every platform.

- :func:`redirect_form_response`: the auto-submitting form that carries the shopper to
  CMI's payment page (guide §4.1: the payment request is a browser POST), answered with
  ``Cache-Control: no-store`` so no cache or back button replays a signed request.
- :class:`ReturnTokens`: the signed token a return page's URL carries (Django's
  :mod:`~django.core.signing`, keyed by ``SECRET_KEY``, one salt per platform). CMI's
  okUrl/failUrl POST is cross-site, so it arrives without the shopper's session cookie
  (SameSite); only a verified POST earns a token, and only a token opens a payment's page.
"""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.http import HttpResponse

from cmi_core import PaymentRequest, render_redirect_form

__all__ = ["ReturnTokens", "redirect_form_response"]


def redirect_form_response(request: PaymentRequest, *, lang: str | None = None) -> HttpResponse:
    """The HTML page that posts ``request`` to CMI, never cached."""
    response = HttpResponse(
        render_redirect_form(request, lang=lang), content_type="text/html; charset=utf-8"
    )
    response["Cache-Control"] = "no-store"
    return response


class ReturnTokens:
    """Sign and read the payment token of a platform's return pages.

    ``sign(oid)`` signs the oid alone; ``sign(oid, a=..., m=...)`` signs ``{"o": oid, ...}``
    (short keys: the token is in a URL). ``read`` answers the same shape as a dict
    (``{"o": oid, ...}``), or None when the token is forged, older than ``max_age``
    seconds, or not of this shape.
    """

    def __init__(self, salt: str, *, max_age: int, compress: bool = False) -> None:
        self.salt = salt
        self.max_age = max_age
        self.compress = compress

    def sign(self, oid: str, **extra: Any) -> str:
        value: Any = {"o": oid, **extra} if extra else oid
        return signing.dumps(value, salt=self.salt, compress=self.compress)

    def read(self, token: str) -> dict[str, Any] | None:
        try:
            raw = signing.loads(token, salt=self.salt, max_age=self.max_age)
        except signing.BadSignature:
            return None
        if isinstance(raw, str):
            return {"o": raw}
        if isinstance(raw, dict) and isinstance(raw.get("o"), str):
            return raw
        return None
