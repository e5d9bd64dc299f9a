"""The "pay button" StreamField block: a label and an amount, in any page's body.

With a payment page chosen, the button opens that page's form with the button's amount
(the page's currency, fields and landing texts apply). Without one, it opens a short
form (name and e-mail) served by ``cmi_wagtail.urls`` in the block's own currency. The
amount travels signed (:func:`cmi_wagtail.checkout.button_token`): what the editor
published is what the payer pays.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cmi_django.display import format_money
from cmi_django.i18n import amount_error
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.blocks.struct_block import StructBlockValidationError

from cmi_core import ValidationError as CoreValidationError
from cmi_core.money import CURRENCIES, check_amount, get_currency
from cmi_wagtail.checkout import button_token

__all__ = ["PayButtonBlock"]


class PayButtonBlock(blocks.StructBlock):
    """``("pay_button", PayButtonBlock())`` in a ``StreamField``'s block list."""

    label = blocks.CharBlock(label=_("Label"), max_length=64)
    amount = blocks.DecimalBlock(
        label=_("Amount"), min_value=Decimal("0.001"), max_digits=15, decimal_places=3
    )
    page = blocks.PageChooserBlock(
        label=_("Payment page"),
        required=False,
        page_type="cmi_wagtail.PaymentPage",
        help_text=_("Leave empty to take the payment with a short form instead."),
    )
    currency = blocks.ChoiceBlock(
        label=_("Currency"),
        choices=[(c.numeric, c.alpha) for c in CURRENCIES.values()],
        default="504",
        help_text=_("Used when no payment page is chosen (the page's currency applies)."),
    )

    class Meta:
        icon = "tag"
        label = _("Pay button")
        template = "cmi_wagtail/blocks/pay_button.html"

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        target = value.get("page")
        currency = (
            (getattr(target.specific, "currency", None) if target is not None else None)
            or value.get("currency")
            or "504"
        )
        try:
            check_amount(Decimal(value["amount"]), get_currency(currency), "amount")
        except CoreValidationError as exc:  # the core's rule, translated, on the field
            raise StructBlockValidationError(
                block_errors={"amount": ValidationError(amount_error(exc, currency))}
            ) from None
        return value

    def get_context(self, value: Any, parent_context: dict[str, Any] | None = None) -> Any:
        context = super().get_context(value, parent_context=parent_context)
        host = (parent_context or {}).get("page")
        request = (parent_context or {}).get("request")
        target = value.get("page")
        context["action"] = ""
        if host is None or getattr(host, "pk", None) is None:
            return context  # a preview of the block alone: no page to pay on
        if target is not None:
            target = target.specific
            currency = target.currency
            context["action"] = target.get_url(request) or ""
        else:
            currency = value.get("currency") or "504"
            context["action"] = reverse("cmi_wagtail:checkout")
        context["token"] = button_token(
            label=value["label"],
            amount=value["amount"],
            currency=currency,
            page_id=host.pk,
            target_id=target.pk if target is not None else None,
        )
        context["display_amount"] = format_money(Decimal(value["amount"]), currency)
        return context
