"""A minimal built-in shop, so a newcomer can pay a test order within a minute.

``GET /demo/`` shows one product and a "Pay" button: a form signed with
:func:`cmi_core.request.build_payment_request` for the first configured merchant, posted
to the emulator's own ``/fim/est3dgate``. The shop's callback (``/demo/callback``)
verifies the ``HASH`` and answers as guide §4.2.1 says (``ACTION=POSTAUTH`` for an
approved payment, ``APPROVED`` for a failed attempt, ``FAILURE`` when the hash is wrong);
its okUrl/failUrl (``/demo/ok``, ``/demo/fail``) verify the hash again and show the outcome.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from urllib.parse import quote

from cmi_core.config import CMIConfig
from cmi_core.errors import SignatureError
from cmi_core.hashing import verify_hash
from cmi_core.request import PaymentOrder, build_payment_request
from cmi_core.sandbox.cards import CHALLENGE_CODE, TEST_CARDS
from cmi_core.sandbox.merchants import Merchant
from cmi_core.sandbox.pages import e, hidden_form, lang_of, plain_page

__all__ = ["DemoShop"]

DEMO_AMOUNT = Decimal("199.00")


class DemoShop:
    """The demo merchant site, for one merchant of the emulator."""

    def __init__(self, merchant: Merchant) -> None:
        self.merchant = merchant
        self._lock = threading.Lock()
        self.replies: dict[str, list[str]] = {}

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
        cards = "".join(
            f"<tr><td><code>{e(c.pan)}</code></td><td>{e(c.brand)}</td>"
            f"<td>{e(c.description)}</td></tr>"
            for c in TEST_CARDS
        )
        langs = " · ".join(
            f'<a href="/demo/?lang={code}">{code}</a>' for code in ("fr", "en", "ar")
        )
        body = (
            "<h1>Boutique de démonstration</h1>"
            f"<p>Marchand <code>{e(self.merchant.client_id)}</code> — commande "
            f"<code>{e(oid)}</code> — {e(DEMO_AMOUNT)} MAD. Langue de la page CMI : {langs}</p>"
            + hidden_form("pay", request.action, request.fields, f"Payer {DEMO_AMOUNT} MAD")
            + "<h2>Cartes de test</h2><p>Expiration : toute date future ; CVV : 3 chiffres ; "
            f"code 3-D Secure : <code>{CHALLENGE_CODE}</code>.</p>"
            f"<table>{cards}</table>"
            '<p><a href="/merchant/">Merchant Center</a></p>'
        )
        page = plain_page("Démo cmi sandbox", body, "fr")
        return page.replace("max-width:34rem", "max-width:48rem")

    def callback(self, fields: Sequence[tuple[str, str]]) -> str:
        """The shop's CallbackURL: verify, then reply as guide §4.2.1 prescribes."""
        values = dict(fields)
        try:
            verify_hash(values, self.merchant.store_key)
        except SignatureError:
            reply = "FAILURE"
        else:
            reply = "ACTION=POSTAUTH" if values.get("ProcReturnCode") == "00" else "APPROVED"
        with self._lock:
            self.replies.setdefault(values.get("oid", ""), []).append(reply)
        return reply

    def result(self, fields: Sequence[tuple[str, str]]) -> str:
        """okUrl / failUrl: verify the hash and show what happened."""
        values: Mapping[str, str] = dict(fields)
        try:
            verify_hash(values, self.merchant.store_key)
            verified = "HASH valide"
        except SignatureError:
            verified = "HASH invalide : à ignorer"
        oid = values.get("oid", "")
        approved = values.get("ProcReturnCode") == "00"
        title = "Paiement accepté" if approved else "Paiement non abouti"
        with self._lock:
            replies = ", ".join(self.replies.get(oid, [])) or "aucun callback reçu"
        rows = [
            ("Commande", oid),
            ("Response", values.get("Response", "")),
            ("ProcReturnCode", values.get("ProcReturnCode", "")),
            ("ErrMsg", values.get("ErrMsg", "")),
            ("Contrôle", verified),
            ("Réponses de la boutique aux callbacks", replies),
        ]
        items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
        body = (
            f'<h1 id="outcome">{e(title)}</h1><dl>{items}</dl>'
            f'<p><a href="/merchant/order/{e(quote(oid, safe=""))}">Voir la commande dans le '
            'Merchant Center</a> · <a href="/demo/">Nouvelle commande</a></p>'
        )
        return plain_page(title, body, "fr")
