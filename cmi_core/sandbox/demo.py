"""A minimal built-in shop, so a newcomer can pay a test order within a minute.

``GET /demo/`` shows one product and a "Pay" button: a form signed with
:func:`cmi_core.request.build_payment_request` for the first configured merchant, posted
to the emulator's own ``/fim/est3dgate``; the shop remembers the order it signed (oid,
amount, currency) as a merchant's database would. Its callback (``/demo/callback``) is a
merchant's callback written with the core: :func:`cmi_core.verify_callback` (hash, oid,
amount) then :func:`cmi_core.decide_callback` against the shop's own record, whose
status it then stores. So ``ACTION=POSTAUTH`` only for the first approval of an order
the shop knows, with its amount and currency; ``APPROVED`` for a failed attempt (or the
same approval again, the same reply); ``FAILURE`` for a wrong hash, an unknown ``oid``
or another amount. Its okUrl/failUrl (``/demo/ok``, ``/demo/fail``) verify the hash again
and show the outcome.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from urllib.parse import quote

from cmi_core.approvals import trans_id_to_keep
from cmi_core.callback import CallbackResult, KnownPayment, decide_callback, verify_callback
from cmi_core.codes import LANGUAGES
from cmi_core.config import CMIConfig
from cmi_core.errors import CMIError, SignatureError
from cmi_core.hashing import verify_hash
from cmi_core.request import PaymentOrder, build_payment_request
from cmi_core.sandbox.cards import CHALLENGE_CODE, TEST_CARDS
from cmi_core.sandbox.merchants import Merchant
from cmi_core.sandbox.pages import e, hidden_form, lang_of, plain_page
from cmi_core.states import Event, PaymentStatus, apply

__all__ = ["DemoShop"]

DEMO_AMOUNT = Decimal("199.00")
DEMO_CURRENCY = "504"  # MAD, build_payment_request's default
#: Orders the shop remembers (each visit of /demo/ signs a new one); the oldest go first.
MAX_ORDERS = 1000


class DemoShop:
    """The demo merchant site, for one merchant of the emulator."""

    def __init__(self, merchant: Merchant) -> None:
        self.merchant = merchant
        self._lock = threading.Lock()
        self.replies: dict[str, list[str]] = {}
        #: The shop's own record of its orders: what the callbacks are checked against.
        self.orders: OrderedDict[str, KnownPayment] = OrderedDict()
        #: The signed request of each order: a callback must carry it back (the binding).
        self.requests: dict[str, dict[str, str]] = {}

    def _remember(self, oid: str, request: dict[str, str]) -> None:
        status = apply(PaymentStatus.new(DEMO_AMOUNT), Event.redirect())
        payment = KnownPayment(
            oid=oid,
            amount=DEMO_AMOUNT,
            currency=DEMO_CURRENCY,
            status=status,
            capture_mode="auto",
        )
        with self._lock:
            self.orders[oid] = payment
            self.requests[oid] = request
            while len(self.orders) > MAX_ORDERS:
                forgotten, _ = self.orders.popitem(last=False)
                self.replies.pop(forgotten, None)
                self.requests.pop(forgotten, None)

    def page(self, public_base: str, callback_base: str, lang: str) -> str:
        lang = lang_of(lang)
        oid = "DEMO-" + secrets.token_hex(5).upper()
        config = CMIConfig(
            client_id=self.merchant.client_id,
            store_key=self.merchant.store_key,
            base_url=public_base,
            lang=lang,
        )
        request = build_payment_request(
            config,
            PaymentOrder(
                oid=oid,
                amount=DEMO_AMOUNT,
                email="client@example.ma",
                billing_name="Client Démo",
                ok_url=f"{public_base}/demo/ok",
                fail_url=f"{public_base}/demo/fail",
                callback_url=f"{callback_base}/demo/callback",
                shop_url=f"{public_base}/demo/",
                description="Commande de démonstration",
            ),
        )
        self._remember(oid, request.as_dict())
        cards = "".join(
            f"<tr><td><code>{e(c.pan)}</code></td><td>{e(c.brand)}</td>"
            f"<td>{e(c.description)}</td></tr>"
            for c in TEST_CARDS
        )
        langs = " · ".join(f'<a href="/demo/?lang={code}">{code}</a>' for code in LANGUAGES)
        body = (
            "<h1>Boutique de démonstration</h1>"
            f"<p>Marchand <code>{e(self.merchant.client_id)}</code> — commande "
            f"<code>{e(oid)}</code> — {e(DEMO_AMOUNT)} MAD. "
            f"Langue de la page CMI\u00a0: {langs}</p>"
            + hidden_form("pay", request.action, request.fields, f"Payer {DEMO_AMOUNT} MAD")
            + "<h2>Cartes de test</h2><p>Expiration\u00a0: toute date future\u202f; "
            "CVV\u00a0: 3 chiffres\u202f; "
            f"code 3-D Secure\u00a0: <code>{CHALLENGE_CODE}</code>.</p>"
            f"<table>{cards}</table>"
            '<p><a href="/merchant/">Merchant Center</a></p>'
        )
        page = plain_page("Démo cmi sandbox", body, "fr")
        return page.replace("max-width:34rem", "max-width:48rem")

    def callback(self, fields: Sequence[tuple[str, str]]) -> str:
        """The shop's CallbackURL: verify, decide against its own record (guide §4.2.1)."""
        result: CallbackResult | None
        values = dict(fields)
        with self._lock:
            expected = self.requests.get(values.get("oid", ""), {})
        try:
            result = verify_callback(values, self.merchant.store_key, expected=expected)
        except CMIError:  # wrong or missing HASH, not bound to its request, unreadable amount
            result = None
        with self._lock:  # a real shop locks the order's row
            known = self.orders.get(result.oid) if result is not None else None
            decision = decide_callback(result, known)
            if known is not None and result is not None and decision.status is not None:
                trans_id = trans_id_to_keep(decision.outcome, known.trans_id, result)
                self.orders[known.oid] = replace(known, status=decision.status, trans_id=trans_id)
            if known is not None:
                self.replies.setdefault(known.oid, []).append(decision.body)
        return decision.body

    def result(self, fields: Sequence[tuple[str, str]]) -> str:
        """okUrl / failUrl: verify the hash and show what happened."""
        values: Mapping[str, str] = dict(fields)
        try:
            verify_hash(values, self.merchant.store_key)
            verified = "HASH valide"
        except SignatureError:
            verified = "HASH invalide\u00a0: à ignorer"
        oid = values.get("oid", "")
        approved = values.get("ProcReturnCode") == "00"
        title = "Paiement accepté" if approved else "Paiement non abouti"
        with self._lock:
            replies = ", ".join(self.replies.get(oid, [])) or "aucun callback reçu"
            known = self.orders.get(oid)
        rows = [
            ("Commande", oid),
            ("Response", values.get("Response", "")),
            ("ProcReturnCode", values.get("ProcReturnCode", "")),
            ("ErrMsg", values.get("ErrMsg", "")),
            ("Contrôle", verified),
            ("Réponses de la boutique aux callbacks", replies),
            ("Statut côté boutique", known.status.state.value if known else "commande inconnue"),
        ]
        items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
        body = (
            f'<h1 id="outcome">{e(title)}</h1><dl>{items}</dl>'
            f'<p><a href="/merchant/order/{e(quote(oid, safe=""))}">Voir la commande dans le '
            'Merchant Center</a> · <a href="/demo/">Nouvelle commande</a></p>'
        )
        return plain_page(title, body, "fr")
