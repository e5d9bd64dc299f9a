"""A small Merchant Center (guide §4.2.6, §5): orders, transactions, callbacks, "Réessayer".

``GET /merchant/`` lists the orders with their state (PRE, POST, RFND, VOID; DECL while no
attempt was approved), ``GET /merchant/order/<oid>`` shows one order's transactions and
every callback with the merchant's reply, each with a "Réessayer" button
(``POST /merchant/callback/<id>/retry``) that sends it again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from cmi_core.money import Currency, display_amount, get_currency
from cmi_core.sandbox.clock import local
from cmi_core.sandbox.pages import e, plain_page
from cmi_core.sandbox.storage import CallbackRow, OrderRow, Store

__all__ = ["order_page", "orders_page"]

_NAV = (
    '<p><a href="/merchant/">Commandes</a> · <a href="/demo/">Démo</a>'
    ' · <a href="/">Sandbox</a></p>'
)


def _money(amount: Decimal, currency: Currency) -> str:
    """An amount with its currency letters (``120.50 MAD``, ``0.00 MAD``) for people."""
    return f"{display_amount(amount, currency)} {currency.alpha}"


def _net(order: OrderRow) -> Decimal:
    if order.state == "PRE":
        return order.authorized
    if order.state in ("POST", "RFND"):
        return order.captured - order.refunded
    return Decimal(0)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return f"{local(moment):%d/%m/%Y %H:%M:%S}"


def orders_page(store: Store) -> str:
    rows = []
    for order in store.list_orders():
        currency = get_currency(order.currency)
        link = f"/merchant/order/{quote(order.oid, safe='')}"
        flag = f"⚠ {e(order.flag_reason)}" if order.flagged else ""
        rows.append(
            f'<tr data-oid="{e(order.oid)}"><td>{e(order.client_id)}</td>'
            f'<td><a href="{e(link)}">{e(order.oid)}</a></td>'
            f"<td>{e(_when(order.created_at))}</td>"
            f'<td class="state">{e(order.state)}</td>'
            f"<td>{e(_money(order.amount, currency))}</td>"
            f"<td>{e(_money(_net(order), currency))}</td>"
            f'<td class="flag">{flag}</td></tr>'
        )
    body = (
        f"<h1>Merchant Center — commandes</h1>{_NAV}"
        '<table id="orders"><thead><tr><th>Marchand</th><th>Commande</th><th>Date</th>'
        "<th>Statut</th><th>Premier montant</th><th>Montant net</th><th>À traiter</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        + ("" if rows else "<p>Aucune commande.</p>")
    )
    return plain_page("Merchant Center", body, "fr").replace("max-width:34rem", "max-width:70rem")


def _callback_row(callback: CallbackRow) -> str:
    fields = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in callback.fields)
    return (
        f'<tr class="callback" data-id="{callback.id}"><td>{callback.id}</td>'
        f'<td class="status">{e(callback.status)}</td>'
        f"<td>{e(_when(callback.created_at))}</td><td>{e(callback.url)}</td>"
        f"<td>{e(callback.http_status or '')}</td>"
        f'<td class="reply"><code>{e(callback.reply)}</code></td><td>{e(callback.note)}</td>'
        f'<td><form method="post" action="/merchant/callback/{callback.id}/retry">'
        '<button type="submit">Réessayer</button></form>'
        f"<details><summary>Données</summary><table>{fields}</table></details></td></tr>"
    )


def order_page(store: Store, oid: str) -> str | None:
    orders = store.orders_by_oid(oid)
    if not orders:
        return None
    parts = [f"<h1>Commande {e(oid)}</h1>", _NAV]
    for order in orders:
        currency = get_currency(order.currency)
        flag = (
            '<p class="message bad" id="flag">'
            f"À traiter manuellement\u00a0: {e(order.flag_reason)}</p>"
            if order.flagged
            else ""
        )
        parts.append(
            f"<h2>Marchand {e(order.client_id)}</h2>{flag}<dl>"
            f'<dt>Statut</dt><dd id="state">{e(order.state)}</dd>'
            f"<dt>Premier montant</dt><dd>{e(_money(order.amount, currency))}</dd>"
            f"<dt>Autorisé</dt><dd>{e(_money(order.authorized, currency))}</dd>"
            f"<dt>Capturé</dt><dd>{e(_money(order.captured, currency))}</dd>"
            f"<dt>Remboursé</dt><dd>{e(_money(order.refunded, currency))}</dd>"
            f"<dt>Montant net</dt><dd>{e(_money(_net(order), currency))}</dd>"
            f"<dt>Carte</dt><dd>{e(order.masked_pan)} {e(order.brand)}</dd>"
            f"<dt>Email</dt><dd>{e(order.email)}</dd></dl>"
        )
        rows = "".join(
            f'<tr class="transaction"><td>{e(t.trans_id)}</td><td class="type">{e(t.type)}</td>'
            f"<td>{e(t.response)}{' (annulée)' if t.voided_at else ''}</td>"
            f"<td>{e(_when(t.created_at))}</td><td>{e(_money(t.amount, currency))}</td>"
            f"<td>{e(t.proc_return_code)}</td><td>{e(t.err_code)}</td></tr>"
            for t in reversed(store.transactions(order.id))
        )
        parts.append(
            "<h3>Transactions</h3><table id='transactions'><thead><tr><th>Id</th><th>Type</th>"
            "<th>Etat</th><th>Date</th><th>Total</th><th>Code</th><th>Erreur</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
        callbacks = "".join(_callback_row(c) for c in store.callbacks(order.id))
        parts.append(
            "<h3>Callbacks</h3><table id='callbacks'><thead><tr><th>Id</th><th>Etat</th>"
            "<th>Date</th><th>URL</th><th>HTTP</th><th>Réponse</th><th>Note</th><th></th>"
            f"</tr></thead><tbody>{callbacks}</tbody></table>"
        )
    html = plain_page(f"Commande {oid}", "\n".join(parts), "fr")
    return html.replace("max-width:34rem", "max-width:80rem")
