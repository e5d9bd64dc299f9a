"""The hosted payment page: ``/fim/est3dgate`` and what follows (guide §4.1, §4.2).

1. ``POST /fim/est3dgate``: the merchant's signed form. Checked as CMI does: one value per
   field (else ``CORE-5110``), guide §4.1.1 (:func:`cmi_core.request.validate_request`),
   a known ``clientid``, the ``ver3`` hash in the emulator's reading (else ``3D-1004``).
   The request is kept server-side under a random session token; the page shows
   merchant, order, amount and the card form. Re-posted request fields are never read again.
2. ``POST /fim/est3dgate/pay``: the card form. Expired session -> ``RULE-0001``; the
   card's checks and the test card's scenario (:mod:`cmi_core.sandbox.cards`) give the
   outcome, or the 3-D Secure challenge page first.
3. ``POST /fim/est3dgate/3ds``: the one-time code of the challenge.

Each outcome is an attempt: a PreAuth transaction, the callback (guide §4.2.1), then the
result page with the browser POST to okUrl (approved) or, after a failure, the card form
again (the shopper may retry, same ``oid``) with a button back to failUrl.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from cmi_core.codes import shopper_message
from cmi_core.errors import SignatureError, ValidationError
from cmi_core.hashing import Reading, verify_hash
from cmi_core.money import format_amount, get_currency, parse_amount
from cmi_core.request import validate_request
from cmi_core.sandbox.callbacks import CallbackDispatcher
from cmi_core.sandbox.cards import (
    CHALLENGE_CODE,
    CHALLENGE_FAILED,
    CardCheck,
    CardEntry,
    Outcome,
    check_card,
    find_card,
    issuer_outcome,
)
from cmi_core.sandbox.clock import Clock
from cmi_core.sandbox.fields import Fields, ascii_digits, field, sign
from cmi_core.sandbox.merchants import Merchant
from cmi_core.sandbox.pages import (
    TEXTS,
    PaymentView,
    challenge_page,
    error_page,
    lang_of,
    payment_page,
    result_page,
)
from cmi_core.sandbox.results import err_msg, new_ids, result_fields
from cmi_core.sandbox.storage import SessionRow, Store

__all__ = ["DEFAULT_SESSION_TIMEOUT", "Gateway", "Page"]

DEFAULT_SESSION_TIMEOUT = 1800  # seconds, guide §4.1.1 ``sessiontimeout``

_ERROR_TITLES = {
    "fr": ("Requête de paiement invalide", "Erreur de paiement"),
    "en": ("Invalid payment request", "Payment error"),
    "ar": ("طلب دفع غير صالح", "خطأ في الدفع"),
}
_UNKNOWN_SESSION = {
    "fr": "Session de paiement inconnue ou terminée. Merci de retourner au site marchand.",
    "en": "Unknown or finished payment session. Please return to the merchant's website.",
    "ar": "جلسة دفع غير معروفة أو منتهية. يرجى العودة إلى موقع التاجر.",
}


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    html: str


def callback_url(fields: Sequence[tuple[str, str]]) -> str:
    """Where the callback goes, or "" when ``CallbackResponse`` is false or no URL."""
    if field(fields, "CallbackResponse").strip().lower() == "false":
        return ""
    return field(fields, "CallbackURL").strip()


class Gateway:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        merchants: Callable[[], Mapping[str, Merchant]],
        dispatcher: CallbackDispatcher,
        reading: Callable[[], Reading] = lambda: Reading.GUIDE,
    ) -> None:
        self.reading = reading  # verifies requests and signs results in it (docs/sandbox.md)
        self.store = store
        self.clock = clock
        self.merchants = merchants
        self.dispatcher = dispatcher

    # Helpers ------------------------------------------------------------------------

    @staticmethod
    def _amount_text(fields: Sequence[tuple[str, str]]) -> tuple[str, str]:
        """The request's amount as the page shows it, and the currency's letters."""
        currency = get_currency(field(fields, "currency").strip())
        return format_amount(parse_amount(field(fields, "amount")), currency), currency.alpha

    def _view(self, fields: Sequence[tuple[str, str]], merchant: Merchant) -> PaymentView:
        amount, currency = self._amount_text(fields)
        return PaymentView(
            lang=lang_of(field(fields, "lang")),
            merchant_name=merchant.name,
            oid=field(fields, "oid").strip(),
            amount=amount,
            currency=currency,
            amount_cur=field(fields, "amountCur").strip(),
            symbol_cur=field(fields, "symbolCur").strip(),
            shop_url=field(fields, "shopurl").strip(),
        )

    def _refusal(self, lang: str, message: str, code: str = "", detail: str = "") -> Page:
        return Page(
            400, error_page(lang, _ERROR_TITLES[lang][0], message, code=code, detail=detail)
        )

    def _session(self, form: Mapping[str, str]) -> tuple[SessionRow, Merchant] | Page:
        session = self.store.get_session(form.get("session", ""))
        merchant = self.merchants().get(session.client_id) if session else None
        if session is None or merchant is None or session.state == "done":
            lang = lang_of(field(session.fields, "lang")) if session else "fr"
            return Page(
                400,
                error_page(
                    lang,
                    _ERROR_TITLES[lang][1],
                    _UNKNOWN_SESSION[lang],
                    code="CORE-5110",
                ),
            )
        return session, merchant

    def _expired(self, session: SessionRow) -> bool:
        return self.clock.now() > session.created_at + timedelta(seconds=session.timeout)

    # 1. The merchant's request ------------------------------------------------------

    def request(self, fields: Fields, client_ip: str) -> Page:
        lang = lang_of(field(fields, "lang"))
        names = [name.lower() for name, _ in fields]
        if len(names) != len(set(names)):
            return self._refusal(
                lang, "Multiple values exist for the single parameter.", code="CORE-5110"
            )
        mapping = dict(fields)
        try:
            validate_request(mapping, require_hash=True)
            # What the page will show, computed now: an amount the core accepts but cannot
            # format (decimal.InvalidOperation past its precision) is refused like any
            # invalid field, before a session exists.
            self._amount_text(fields)
        except ValidationError as exc:
            return self._refusal(lang, f"{exc.field}: {exc.rule}", code="", detail=exc.field)
        except ArithmeticError:
            return self._refusal(
                lang, "amount: a decimal amount such as 29.95", code="", detail="amount"
            )
        merchant = self.merchants().get(field(fields, "clientid").strip())
        if merchant is None:
            return self._refusal(lang, "Unknown merchant (clientid).", detail="clientid")
        now = self.clock.now()
        try:
            verify_hash(mapping, merchant.store_key, (self.reading(),))
        except SignatureError:
            outcome = Outcome("Error", "99", "3D-1004")
            result = sign(
                result_fields(
                    fields,
                    outcome,
                    ids=new_ids(now),
                    now=now,
                    client_ip=client_ip,
                    client_id=merchant.client_id,
                ),
                merchant.store_key,
                reading=self.reading(),
            )
            return Page(
                400,
                error_page(
                    lang,
                    _ERROR_TITLES[lang][1],
                    err_msg(outcome),
                    code="3D-1004",
                    detail="ProcReturnCode 99",
                    give_up=(field(fields, "failUrl"), result),
                    auto_redirect=field(fields, "AutoRedirect").lower() == "true",
                ),
            )
        oid = field(fields, "oid").strip()
        order = self.store.get_order(merchant.client_id, oid)
        if order is not None and order.state != "DECL":
            return self._refusal(
                lang, f"Order {oid} already exists ({order.state}).", code="CORE-5110"
            )
        view = self._view(fields, merchant)
        token = secrets.token_urlsafe(24)
        timeout_text = field(fields, "sessiontimeout").strip()
        timeout = int(timeout_text) if ascii_digits(timeout_text) else DEFAULT_SESSION_TIMEOUT
        self.store.create_session(
            token,
            client_id=merchant.client_id,
            oid=oid,
            fields=fields,
            now=now,
            timeout=timeout,
            client_ip=client_ip,
        )
        return Page(200, payment_page(view, token))

    # 2. The card form ---------------------------------------------------------------

    def pay(self, form: Mapping[str, str], client_ip: str) -> Page:
        found = self._session(form)
        if isinstance(found, Page):
            return found
        session, merchant = found
        entry = CardEntry(
            pan=form.get("pan", ""),
            month=form.get("Ecom_Payment_Card_ExpDate_Month", ""),
            year=form.get("Ecom_Payment_Card_ExpDate_Year", ""),
            cvv=form.get("cv2", ""),
            holder=form.get("cardHolderName", ""),
        )
        if self._expired(session):
            return self._finish(session, merchant, Outcome.platform_error("RULE-0001"), client_ip)
        check = check_card(entry, self.clock.now())
        if check.outcome is not None:
            return self._finish(session, merchant, check.outcome, client_ip, check, entry=entry)
        card = check.card
        if card is None:  # pragma: no cover - check_card returns an outcome then
            return self._finish(session, merchant, Outcome.platform_error("RULE-0004"), client_ip)
        if card.kind == "challenge":
            challenge = {
                "pan": card.pan,
                "month": entry.month.strip(),
                "year": entry.year.strip(),
                "holder": entry.holder.strip(),
            }
            self.store.set_session_state(session.token, "challenge", challenge)
            view = self._view(session.fields, merchant)
            hint = f"cmi sandbox: {CHALLENGE_CODE}"
            return Page(200, challenge_page(view, session.token, check.masked_pan, hint))
        return self._finish(session, merchant, issuer_outcome(card), client_ip, check, entry=entry)

    # 3. The 3-D Secure challenge ----------------------------------------------------

    def challenge(self, form: Mapping[str, str], client_ip: str) -> Page:
        found = self._session(form)
        if isinstance(found, Page):
            return found
        session, merchant = found
        data = session.challenge
        card = find_card(data.get("pan", ""))
        if session.state != "challenge" or card is None:
            lang = lang_of(field(session.fields, "lang"))
            return self._refusal(lang, _UNKNOWN_SESSION[lang], code="3D-1034")
        entry = CardEntry(card.pan, data["month"], data["year"], "000", data.get("holder", ""))
        check = check_card(entry, self.clock.now())
        if self._expired(session):
            outcome = Outcome.platform_error("RULE-0001")
        # Bytes: compare_digest refuses non-ASCII str, and such a code is just a wrong one.
        elif secrets.compare_digest(form.get("otp", "").strip().encode(), CHALLENGE_CODE.encode()):
            outcome = issuer_outcome(card)
        else:
            outcome = CHALLENGE_FAILED
        # Only once the outcome is known: the challenge is over, the card form is next.
        self.store.set_session_state(session.token, "open")
        return self._finish(session, merchant, outcome, client_ip, check, entry=entry)

    # The attempt ----------------------------------------------------------------------

    def _finish(
        self,
        session: SessionRow,
        merchant: Merchant,
        outcome: Outcome,
        client_ip: str,
        check: CardCheck | None = None,
        *,
        entry: CardEntry | None = None,
    ) -> Page:
        now = self.clock.now()
        fields = session.fields
        currency = get_currency(field(fields, "currency").strip())
        amount = parse_amount(field(fields, "amount"))
        ids = new_ids(now)
        signed = sign(
            result_fields(
                fields,
                outcome,
                ids=ids,
                now=now,
                client_ip=client_ip,
                client_id=merchant.client_id,
                check=check,
                entry=entry,
            ),
            merchant.store_key,
            reading=self.reading(),
        )
        expired = outcome.err_code == "RULE-0001"
        with self.store.transaction():
            current = self.store.get_session(session.token)
            if current is None or current.state == "done":
                lang = lang_of(field(fields, "lang"))
                return self._refusal(lang, _UNKNOWN_SESSION[lang], code="CORE-5110")
            order = self.store.ensure_order(
                merchant.client_id,
                session.oid,
                currency=currency.numeric,
                amount=amount,
                email=field(fields, "email"),
                bill_to_name=field(fields, "BillToName"),
                now=now,
            )
            self.store.add_transaction(
                order.id,
                "PreAuth",
                amount,
                now,
                response=outcome.response,
                proc_return_code=outcome.proc_return_code,
                err_code=outcome.err_code,
                trans_id=ids.trans_id,
                host_ref_num=dict(signed).get("HostRefNum", ""),
                auth_code=dict(signed).get("AuthCode", ""),
            )
            card_values = {
                "masked_pan": check.masked_pan if check else order.masked_pan,
                "brand": check.brand if check else order.brand,
                "issuer": check.issuer if check else order.issuer,
                "md_status": outcome.md_status,
            }
            if outcome.approved:
                self.store.update_order(
                    order.id, now, state="PRE", authorized=amount, **card_values
                )
            elif order.state == "DECL":
                self.store.update_order(order.id, now, **card_values)
            if outcome.approved or expired:
                self.store.set_session_state(session.token, "done")
            attempt = self.store.add_attempt(
                order.id,
                session_token=session.token,
                response=outcome.response,
                proc_return_code=outcome.proc_return_code,
                err_code=outcome.err_code,
                md_status=outcome.md_status,
                fields=signed,
                callback_url=callback_url(fields),
                now=now,
            )
        self.dispatcher.after_attempt(attempt, merchant.client_id, session.oid)
        view = self._view(fields, merchant)
        auto = field(fields, "AutoRedirect").strip().lower() == "true"
        message = shopper_message(outcome.proc_return_code, outcome.err_code, view.lang)
        if outcome.approved:
            t = TEXTS[view.lang]
            return Page(
                200,
                result_page(
                    view,
                    approved=True,
                    message=t["approved_text"],
                    action=field(fields, "okUrl"),
                    fields=signed,
                    auto_redirect=auto,
                    details=[
                        (t["auth_code"], dict(signed).get("AuthCode", "")),
                        (t["card"], check.masked_pan if check else ""),
                    ],
                ),
            )
        if expired:
            return Page(
                200,
                result_page(
                    view,
                    approved=False,
                    message=message,
                    action=field(fields, "failUrl"),
                    fields=signed,
                    auto_redirect=auto,
                ),
            )
        return Page(
            200,
            payment_page(
                view, session.token, message=message, give_up=(field(fields, "failUrl"), signed)
            ),
        )
