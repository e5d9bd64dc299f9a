"""The page that carries the shopper's browser to CMI (guide §4.1.2, §4.1.3 "Remarque").

An auto-submitting HTML form: every value escaped, the page and the form declared in the
charset the request declares (``encoding=utf-8``), exactly the signed fields posted, and
a submit button with no ``name`` (a named button would be posted and break the hash),
shown only to browsers without JavaScript.
"""

from __future__ import annotations

from html import escape

from cmi_core.request import ENCODING, PaymentRequest

__all__ = ["render_redirect_form"]

_TEXTS = {
    "fr": ("Redirection vers le paiement sécurisé", "Continuer vers le paiement"),
    "en": ("Redirecting to the secure payment page", "Continue to payment"),
    "ar": ("جارٍ تحويلك إلى صفحة الدفع الآمن", "متابعة إلى الدفع"),
}

_PAGE = """<!DOCTYPE html>
<html lang="{lang}" dir="{direction}">
<head>
<meta charset="{charset}">
<meta name="robots" content="noindex">
<title>{title}</title>
</head>
<body>
<form id="cmi-payment-form" method="post" action="{action}" accept-charset="{charset}">
{inputs}
<noscript><p>{title}</p><button type="submit">{button}</button></noscript>
</form>
<script>document.getElementById("cmi-payment-form").submit();</script>
</body>
</html>
"""


def render_redirect_form(request: PaymentRequest, *, lang: str | None = None) -> str:
    """Return the complete HTML page (a ``str``; serve it as ``text/html; charset=utf-8``).

    ``lang`` defaults to the request's ``lang`` field and chooses the page's texts and
    direction (right to left for Arabic).
    """
    fields = request.as_dict()
    language = lang or fields.get("lang", "fr")
    title, button = _TEXTS.get(language, _TEXTS["fr"])
    inputs = "\n".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in request.fields
    )
    return _PAGE.format(
        lang=escape(language),
        direction="rtl" if language == "ar" else "ltr",
        charset=ENCODING,
        title=escape(title),
        action=escape(request.action),
        inputs=inputs,
        button=escape(button),
    )
