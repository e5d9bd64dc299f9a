"""Oscar's side of a CMI payment: what checkout stores, and the order placed from it.

CMI's callback arrives with no shopper session (and the shopper's okUrl POST is
cross-site, so SameSite cookies drop the session there too). So, before the shopper is
sent to CMI, :func:`submission_data` turns Oscar's checkout submission (the frozen basket,
addresses, shipping method, exact totals) into plain JSON kept on the ``cmi_django``
payment record; :func:`place_order` places the Oscar order from it, once, whether the
callback or the verified okUrl POST gets there first.

Exactly once: the frozen basket's row is locked (``select_for_update``) for the whole
placement, inside the callback's transaction; every attempt (oid) of one order number
shares that basket, so two approvals of two attempts cannot both place an order, and an
existing order with the number is returned instead of a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from cmi_django.display import format_money
from cmi_django.i18n import isolate, shopper_language
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils.translation import gettext
from oscar.core.loading import get_class, get_model
from oscar.core.prices import Price

if TYPE_CHECKING:
    from cmi_django.models import Payment

logger = logging.getLogger("cmi_oscar")

__all__ = [
    "BasketChangedError",
    "find_order",
    "place_order",
    "record_capture",
    "record_void",
    "send_confirmation",
    "submission_data",
    "thaw_basket",
]


class BasketChangedError(Exception):
    """The frozen basket no longer holds what the shopper paid for: no order is placed.

    Raised inside the callback's transaction, so ``cmi_django`` rolls back and answers
    ``FAILURE`` (CMI does not capture), then flags the payment (needs attention, with this
    message) so that staff void the authorisation.
    """


def _address_fields(address: Any) -> dict[str, Any] | None:
    """An unsaved Oscar address as JSON: every concrete field but the id."""
    if not address:
        return None
    fields: dict[str, Any] = {}
    for field in address._meta.concrete_fields:
        if field.primary_key:
            continue
        value = field.value_from_object(address)
        if value is None or isinstance(value, bool | int | str):
            fields[field.attname] = value
        else:  # phone numbers, dates...
            fields[field.attname] = str(value)
    return fields


def _price(price: Any) -> dict[str, str | None]:
    return {
        "currency": price.currency,
        "excl_tax": str(price.excl_tax),
        "incl_tax": str(price.incl_tax),
        "tax_code": getattr(price, "tax_code", None),
    }


def _unprice(data: Mapping[str, Any]) -> Price:
    return Price(
        currency=data["currency"],
        excl_tax=Decimal(data["excl_tax"]),
        incl_tax=Decimal(data["incl_tax"]),
        tax_code=data.get("tax_code"),
    )


def _lines(basket: Any) -> list[list[int]]:
    """The basket's content as the shopper paid for it: (product, stock record, qty)."""
    return sorted(
        [line.product_id, line.stockrecord_id or 0, line.quantity] for line in basket.all_lines()
    )


def submission_data(
    *,
    order_number: str,
    user: Any,
    basket: Any,
    shipping_address: Any,
    shipping_method: Any,
    shipping_charge: Any,
    billing_address: Any,
    order_total: Any,
    surcharges: Any = None,
    guest_email: str = "",
) -> dict[str, Any]:
    """Everything :func:`place_order` needs, as JSON, from Oscar's checkout submission."""
    return {
        "order_number": str(order_number),
        "basket_id": basket.id,
        "lines": _lines(basket),
        "user_id": user.pk if user is not None and user.is_authenticated else None,
        "guest_email": guest_email or "",
        "shipping_address": _address_fields(shipping_address),
        "billing_address": _address_fields(billing_address),
        "shipping_method": {"code": shipping_method.code, "name": str(shipping_method.name)},
        "shipping_charge": _price(shipping_charge),
        "order_total": _price(order_total),
        "surcharges": [
            {"name": str(s.surcharge.name), "code": s.surcharge.code, **_price(s.price)}
            for s in (surcharges or ())
        ],
    }


def find_order(payment: Payment) -> Any | None:
    """The Oscar order of a payment (any attempt of its order number), or None."""
    order_model = get_model("order", "Order")
    number = (payment.data or {}).get("order_number") or payment.reference
    return order_model._default_manager.filter(number=number).first()


@dataclass(frozen=True, slots=True)
class _ShippingStandIn:
    """The shipping method as chosen at checkout, when the repository no longer offers it."""

    code: str
    name: str

    def discount(self, basket: Any) -> Decimal:
        return Decimal("0.00")


def _shipping_method(basket: Any, user: Any, address: Any, stored: Mapping[str, str]) -> Any:
    repository = get_class("shipping.repository", "Repository")()
    for method in repository.get_shipping_methods(basket, user=user, shipping_addr=address):
        if method.code == stored["code"]:
            return method
    return _ShippingStandIn(code=stored["code"], name=stored["name"])


def _user(user_id: int | None) -> Any:
    if user_id is None:
        return AnonymousUser()
    return get_user_model()._default_manager.filter(pk=user_id).first() or AnonymousUser()


def place_order(payment: Payment, *, status: str | None = None) -> tuple[Any, bool]:
    """Place the Oscar order a payment was made for; return ``(order, created)``.

    Idempotent: an existing order with the number is returned (``created`` False). The
    basket's strategy and offers are applied again (the callback has no request), the
    order totals are the exact ones the shopper saw and CMI authorised. The order is
    placed in the shopper's language (:func:`cmi_django.i18n.shopper_language`): the
    callback has no request, and Oscar stores translated names (the shipping method's).
    """
    with shopper_language(payment):
        return _place_order(payment, status=status)


def _place_order(payment: Payment, *, status: str | None) -> tuple[Any, bool]:
    data = payment.data or {}
    basket_model = get_model("basket", "Basket")
    order_model = get_model("order", "Order")
    # No savepoint of its own: every caller runs it in the transaction (or savepoint) of
    # the change it records, which any exception from here rolls back whole.
    with transaction.atomic(savepoint=False):
        basket = basket_model._default_manager.select_for_update().get(pk=data["basket_id"])
        # Oscar submits a basket with the order placed from it (here, and in its own
        # checkout): an order can only exist once the basket is submitted. Should one
        # exist regardless, Oscar's OrderCreator refuses its number (unique as well).
        if basket.status == basket_model.SUBMITTED:
            existing = order_model._default_manager.filter(number=data["order_number"]).first()
            if existing is not None:
                return existing, False
            # Submitted with another order: another attempt under another number (a
            # shop's own OrderNumberGenerator), or Oscar's own checkout. Never a second
            # order from one basket: FAILURE (CMI does not capture) and flagged.
            raise BasketChangedError(
                f"basket {basket.id} was already submitted with another order; payment "
                f"{payment.oid} (order number {data['order_number']}) places none"
            )
        user = _user(data.get("user_id"))
        basket.strategy = get_class("partner.strategy", "Selector")().strategy(user=user)
        get_class("offer.applicator", "Applicator")().apply(basket, user, None)
        if _lines(basket) != data["lines"]:
            raise BasketChangedError(
                f"basket {basket.id} changed since payment {payment.oid} was started"
            )
        # Oscar's own (or the shop's forked) checkout methods save the addresses and,
        # for a signed-in shopper, update the address book as Oscar's checkout does.
        checkout = get_class("checkout.mixins", "OrderPlacementMixin")()
        shipping_address = checkout.create_shipping_address(
            user, _address("order", "ShippingAddress", data["shipping_address"])
        )
        billing_address = checkout.create_billing_address(
            user,
            billing_address=_address("order", "BillingAddress", data["billing_address"]),
            shipping_address=shipping_address,
        )
        surcharges = [
            SimpleNamespace(
                surcharge=SimpleNamespace(name=s["name"], code=s["code"]), price=_unprice(s)
            )
            for s in data.get("surcharges") or ()
        ]
        extra: dict[str, Any] = {}
        if data.get("guest_email") and not user.is_authenticated:
            extra["guest_email"] = data["guest_email"]
        order = get_class("order.utils", "OrderCreator")().place_order(
            basket=basket,
            total=_unprice(data["order_total"]),
            shipping_method=_shipping_method(
                basket, user, shipping_address, data["shipping_method"]
            ),
            shipping_charge=_unprice(data["shipping_charge"]),
            user=user,
            shipping_address=shipping_address,
            billing_address=billing_address,
            order_number=data["order_number"],
            status=status,
            request=None,
            surcharges=surcharges or None,
            **extra,
        )
        basket.submit()
    logger.info("Order #%s placed for CMI payment %s", order.number, payment.oid)
    return order, True


def _address(app_label: str, model_name: str, fields: Mapping[str, Any] | None) -> Any:
    """The unsaved Oscar address the payment step recorded, or None."""
    if not fields:
        return None
    return get_model(app_label, model_name)(**fields)


def thaw_basket(payment: Payment, request_basket: Any = None) -> Any | None:
    """Give the shopper back the basket frozen for an unpaid payment; return it.

    Only a frozen basket with no order is thawed. When the shopper has started another
    basket since (``request_basket``), its lines are merged into the thawed one, as
    Oscar's ``restore_frozen_basket`` does.
    """
    basket_model = get_model("basket", "Basket")
    data = payment.data or {}
    if find_order(payment) is not None:
        return None
    basket = basket_model._default_manager.filter(pk=data.get("basket_id")).first()
    if basket is None or basket.status != basket_model.FROZEN:
        return basket
    basket.thaw()
    if request_basket is not None and request_basket.id and request_basket.id != basket.id:
        basket.merge(request_basket)
        basket.strategy = request_basket.strategy
    return basket


#: The order's relations Oscar's order-placed e-mail templates read, each in both the
#: text and the HTML body: prefetched once (``prefetch_related_objects``) before the
#: e-mail is rendered, so each is one query instead of one per template.
CONFIRMATION_PREFETCH = ("lines", "surcharges")


def send_confirmation(order_id: int, lang: str, *, order: Any = None) -> None:
    """Oscar's order-placed e-mail, in the shopper's language (``lang``: ``Payment.lang``).

    Run after the commit; a failure is logged, not raised (an e-mail problem must not look
    like a payment problem). ``order``: the order as just placed, when the caller has it
    (its shipping address and other relations are then not read again, as Oscar's own
    checkout sends it); otherwise it is read by ``order_id``. Its lines and surcharges
    are read once for the whole e-mail (:data:`CONFIRMATION_PREFETCH`).
    """
    try:
        with shopper_language(lang):
            if order is None or order.pk != order_id:
                order = get_model("order", "Order")._default_manager.get(pk=order_id)
            # Oscar's e-mail templates (text and HTML) each read the lines and the
            # surcharges (the totals): read once here, not twice each.
            prefetch_related_objects([order], *CONFIRMATION_PREFETCH)
            dispatcher = get_class("order.utils", "OrderDispatcher")(logger=logger)
            context = {"user": order.user, "order": order, "lines": order.lines.all()}
            dispatcher.send_order_placed_email_for_user(order, context)
    except Exception:  # an e-mail problem must not look like a payment problem
        logger.exception("Order %s: the order-placed e-mail could not be sent", order_id)


def _money(amount: Decimal, payment: Payment) -> str:
    """The amount as money, isolated from the note's sentence in a right-to-left language
    (an Arabic note would otherwise show "MAD 200.00" with its parts reordered)."""
    return isolate(format_money(amount, payment.currency))


def record_capture(order: Any, source: Any, payment: Payment, amount: Decimal) -> None:
    """After a capture: when less than the authorised amount was taken, the rest of the
    authorisation is released (guide §5: one capture per authorisation), so the source's
    allocation comes down to what was captured and the order gets a note saying so."""
    authorised = payment.authorised_amount or payment.amount
    captured = payment.captured_amount
    if captured <= 0 or captured >= authorised:
        return
    if source.amount_allocated > captured:
        source.amount_allocated = captured
        source.save(update_fields=["amount_allocated"])
    order.notes.create(
        note_type="CMI",
        message=gettext(
            "CMI: %(captured)s captured of the %(authorised)s authorised; the remaining "
            "%(released)s is released to the cardholder and will not be taken."
        )
        % {
            "captured": _money(captured, payment),
            "authorised": _money(authorised, payment),
            "released": _money(authorised - captured, payment),
        },
    )


def record_void(order: Any, source: Any, payment: Payment) -> Decimal:
    """After a void (CMI cancels the authorisation, or the same-day capture with it):
    nothing is taken from the card. The source says so (allocation and debit back to
    zero, a "Void" transaction for the history) and a note on the order explains it.
    Returns the amount the void released."""
    amount = source.amount_debited or source.amount_allocated or payment.amount
    source.transactions.create(txn_type="Void", amount=amount, reference=payment.oid)
    source.amount_allocated = Decimal(0)
    source.amount_debited = Decimal(0)
    source.save(update_fields=["amount_allocated", "amount_debited"])
    order.notes.create(
        note_type="CMI",
        message=gettext(
            "CMI: authorisation cancelled (void) for %(amount)s: nothing is taken from the card."
        )
        % {"amount": _money(amount, payment)},
    )
    return Decimal(amount)
