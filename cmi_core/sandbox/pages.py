"""HTML of the hosted payment pages, in the request's ``lang`` (guide §4.1.1).

French, English and Arabic (right to left). Every value is escaped with
:func:`html.escape`; forms that go back to the merchant carry exactly the signed fields
and a submit button without a ``name`` (a named button would be posted, guide §4.1.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from cmi_core.codes import Lang

__all__ = [
    "TEXTS",
    "PaymentView",
    "challenge_page",
    "error_page",
    "lang_of",
    "payment_page",
    "plain_page",
    "result_page",
]

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Paiement sécurisé",
        "merchant": "Marchand",
        "order": "Commande",
        "amount": "Montant",
        "converted": "Montant converti (indicatif)",
        "pan": "Numéro de carte",
        "expiry": "Date d'expiration",
        "month": "Mois",
        "year": "Année",
        "cvv": "Cryptogramme visuel (CVV)",
        "holder": "Nom du porteur",
        "pay": "Payer",
        "cancel": "Annuler",
        "challenge": "Authentification 3-D Secure",
        "challenge_text": "Saisissez le code à usage unique envoyé par votre banque.",
        "code": "Code",
        "validate": "Valider",
        "approved": "Paiement accepté",
        "approved_text": "Votre paiement a été accepté. Merci.",
        "failed": "Paiement non abouti",
        "back": "Retour au site marchand",
        "continue": "Continuer",
        "redirecting": "Redirection vers le site marchand…",
        "auth_code": "Numéro d'autorisation",
        "card": "Carte",
        "error": "Erreur",
        "sandbox": "Environnement de test local (cmi sandbox) : aucune carte réelle.",
    },
    "en": {
        "title": "Secure payment",
        "merchant": "Merchant",
        "order": "Order",
        "amount": "Amount",
        "converted": "Converted amount (for information)",
        "pan": "Card number",
        "expiry": "Expiry date",
        "month": "Month",
        "year": "Year",
        "cvv": "Security code (CVV)",
        "holder": "Cardholder name",
        "pay": "Pay",
        "cancel": "Cancel",
        "challenge": "3-D Secure authentication",
        "challenge_text": "Enter the one-time code your bank sent you.",
        "code": "Code",
        "validate": "Confirm",
        "approved": "Payment approved",
        "approved_text": "Your payment was approved. Thank you.",
        "failed": "Payment not completed",
        "back": "Back to the merchant's website",
        "continue": "Continue",
        "redirecting": "Redirecting to the merchant's website…",
        "auth_code": "Authorisation code",
        "card": "Card",
        "error": "Error",
        "sandbox": "Local test environment (cmi sandbox): no real card.",
    },
    "ar": {
        "title": "دفع آمن",
        "merchant": "التاجر",
        "order": "الطلب",
        "amount": "المبلغ",
        "converted": "المبلغ المحوّل (للعلم)",
        "pan": "رقم البطاقة",
        "expiry": "تاريخ انتهاء الصلاحية",
        "month": "الشهر",
        "year": "السنة",
        "cvv": "رمز التحقق (CVV)",
        "holder": "اسم حامل البطاقة",
        "pay": "ادفع",
        "cancel": "إلغاء",
        "challenge": "المصادقة 3-D Secure",
        "challenge_text": "أدخل الرمز الذي أرسله إليك البنك.",
        "code": "الرمز",
        "validate": "تأكيد",
        "approved": "تم قبول الدفع",
        "approved_text": "تم قبول عملية الدفع. شكراً لك.",
        "failed": "لم تكتمل عملية الدفع",
        "back": "العودة إلى موقع التاجر",
        "continue": "متابعة",
        "redirecting": "جارٍ التحويل إلى موقع التاجر…",
        "auth_code": "رقم الترخيص",
        "card": "البطاقة",
        "error": "خطأ",
        "sandbox": "بيئة اختبار محلية (cmi sandbox): لا بطاقات حقيقية.",
    },
}

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0;color:#111}
main{max-width:34rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.1)}
h1{font-size:1.4rem;color:#0b4f8a}dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}
dt{font-weight:600}dd{margin:0}label{display:block;margin:.6rem 0}
input{display:block;padding:.4rem;font-size:1rem;width:100%;box-sizing:border-box}
.row{display:flex;gap:1rem}.row label{flex:1}
button{background:#0b4f8a;color:#fff;border:0;padding:.6rem 1.4rem;font-size:1rem;
border-radius:4px;cursor:pointer;margin-top:.8rem}
.message{padding:.7rem;border-radius:4px;margin:1rem 0}
.bad{background:#fde8e8;color:#8a1010}.good{background:#e6f6ea;color:#0d5a24}
.note{font-size:.8rem;color:#666;margin-top:1.5rem}code{font-size:.9rem}
"""


def lang_of(value: str | None) -> Lang:
    """The page language: the request's ``lang`` if CMI knows it, French otherwise."""
    text = (value or "").strip().lower()
    if text == "en":
        return "en"
    if text == "ar":
        return "ar"
    return "fr"


def e(value: object) -> str:
    return escape(str(value), quote=True)


def plain_page(title: str, body: str, lang: str = "en", *, script: str = "") -> str:
    """A complete HTML document (``dir="rtl"`` for Arabic)."""
    direction = "rtl" if lang == "ar" else "ltr"
    return (
        f'<!DOCTYPE html>\n<html lang="{e(lang)}" dir="{direction}">\n<head>\n'
        '<meta charset="utf-8">\n<meta name="robots" content="noindex">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n{script}</body>\n</html>\n"
    )


def hidden_form(form_id: str, action: str, fields: Sequence[tuple[str, str]], button: str) -> str:
    """A POST form of hidden fields and an unnamed submit button."""
    inputs = "\n".join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">' for name, value in fields
    )
    return (
        f'<form id="{e(form_id)}" method="post" action="{e(action)}"'
        ' accept-charset="utf-8">\n'
        f'{inputs}\n<button type="submit">{e(button)}</button>\n</form>'
    )


_AUTO_SUBMIT = '<script>document.getElementById("return").submit();</script>\n'


@dataclass(frozen=True, slots=True)
class PaymentView:
    """What the payment page shows about the order."""

    lang: Lang
    merchant_name: str
    oid: str
    amount: str
    currency: str
    amount_cur: str = ""
    symbol_cur: str = ""
    shop_url: str = ""


def _summary(view: PaymentView) -> str:
    t = TEXTS[view.lang]
    rows = [
        (t["merchant"], view.merchant_name),
        (t["order"], view.oid),
        (t["amount"], f"{view.amount} {view.currency}"),
    ]
    if view.amount_cur:
        rows.append((t["converted"], f"{view.amount_cur} {view.symbol_cur}".strip()))
    items = "\n".join(f"<dt>{e(k)}</dt><dd><bdi>{e(v)}</bdi></dd>" for k, v in rows)
    return f'<dl class="summary">\n{items}\n</dl>'


def _cancel(view: PaymentView) -> str:
    if not view.shop_url:
        return ""
    return f'<p><a id="cancel" href="{e(view.shop_url)}">{e(TEXTS[view.lang]["cancel"])}</a></p>'


def payment_page(
    view: PaymentView,
    token: str,
    *,
    message: str = "",
    give_up: tuple[str, Sequence[tuple[str, str]]] | None = None,
) -> str:
    """The card form; after a failed attempt, the reason and a way back to failUrl."""
    t = TEXTS[view.lang]
    parts = [f"<h1>{e(t['title'])}</h1>", _summary(view)]
    if message:
        # The shopper message already says what to do next (another card, later): once.
        parts.append(f'<div class="message bad" id="error">{e(message)}</div>')
    parts.append(
        '<form id="card" method="post" action="/fim/est3dgate/pay" accept-charset="utf-8"'
        ' autocomplete="off">\n'
        f'<input type="hidden" name="session" value="{e(token)}">\n'
        f'<label>{e(t["pan"])}<input name="pan" id="pan" inputmode="numeric"'
        ' maxlength="23" required></label>\n'
        f'<div class="row"><label>{e(t["month"])}'
        '<input name="Ecom_Payment_Card_ExpDate_Month" id="month" inputmode="numeric"'
        ' maxlength="2" placeholder="MM" required></label>\n'
        f'<label>{e(t["year"])}<input name="Ecom_Payment_Card_ExpDate_Year" id="year"'
        ' inputmode="numeric" maxlength="4" placeholder="YY" required></label></div>\n'
        f'<label>{e(t["cvv"])}<input name="cv2" id="cv2" inputmode="numeric" maxlength="4"'
        " required></label>\n"
        f'<label>{e(t["holder"])}<input name="cardHolderName" id="holder"'
        ' maxlength="64"></label>\n'
        f'<button type="submit">{e(t["pay"])}</button>\n</form>'
    )
    parts.append(_cancel(view))
    if give_up is not None:
        action, fields = give_up
        parts.append(hidden_form("return", action, fields, t["back"]))
    parts.append(f'<p class="note">{e(t["sandbox"])}</p>')
    return plain_page(t["title"], "\n".join(parts), view.lang)


def challenge_page(view: PaymentView, token: str, masked_pan: str, hint: str) -> str:
    t = TEXTS[view.lang]
    body = "\n".join(
        [
            f"<h1>{e(t['challenge'])}</h1>",
            _summary(view),
            f"<p>{e(t['card'])} : <code>{e(masked_pan)}</code></p>",
            f"<p>{e(t['challenge_text'])}</p>",
            (
                '<form id="challenge" method="post" action="/fim/est3dgate/3ds"'
                ' accept-charset="utf-8">'
            ),
            f'<input type="hidden" name="session" value="{e(token)}">',
            (
                f'<label>{e(t["code"])}<input name="otp" id="otp" inputmode="numeric"'
                ' maxlength="8" autocomplete="one-time-code" required></label>'
            ),
            f'<button type="submit">{e(t["validate"])}</button>',
            "</form>",
            f'<p class="note">{e(hint)}</p>',
        ]
    )
    return plain_page(t["challenge"], body, view.lang)


def result_page(
    view: PaymentView,
    *,
    approved: bool,
    message: str,
    action: str,
    fields: Sequence[tuple[str, str]],
    auto_redirect: bool,
    details: Sequence[tuple[str, str]] = (),
) -> str:
    """The result and the browser POST to okUrl/failUrl (auto-submitted if asked)."""
    t = TEXTS[view.lang]
    title = t["approved"] if approved else t["failed"]
    css = "good" if approved else "bad"
    # Each value isolated: a card mask ("411111***1111") or a code in the Arabic page would
    # otherwise be split by the bidi algorithm around its neutral characters.
    rows = "\n".join(f"<dt>{e(k)}</dt><dd><bdi>{e(v)}</bdi></dd>" for k, v in details)
    parts = [
        f"<h1>{e(title)}</h1>",
        f'<div class="message {css}" id="result">{e(message)}</div>',
        _summary(view),
        f"<dl>{rows}</dl>" if rows else "",
    ]
    if auto_redirect:
        parts.append(f"<p>{e(t['redirecting'])}</p>")
    parts.append(hidden_form("return", action, fields, t["continue"] if approved else t["back"]))
    return plain_page(
        title, "\n".join(parts), view.lang, script=_AUTO_SUBMIT if auto_redirect else ""
    )


def error_page(
    lang: str,
    title: str,
    message: str,
    *,
    code: str = "",
    detail: str = "",
    give_up: tuple[str, Sequence[tuple[str, str]]] | None = None,
    auto_redirect: bool = False,
) -> str:
    """A refusal before any card was asked (bad hash, missing field, expired session...)."""
    t = TEXTS[lang]
    parts = [f"<h1>{e(title)}</h1>", f'<div class="message bad" id="error">{e(message)}</div>']
    if code:
        parts.append(f'<p>{e(t["error"])} : <code id="code">{e(code)}</code></p>')
    if detail:
        parts.append(f'<p id="detail">{e(detail)}</p>')
    if give_up is not None:
        action, fields = give_up
        parts.append(hidden_form("return", action, fields, t["back"]))
    script = _AUTO_SUBMIT if auto_redirect and give_up is not None else ""
    return plain_page(title, "\n".join(parts), lang, script=script)
