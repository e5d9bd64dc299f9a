"""The payer's form (validated server-side) and the admin form of the CMI settings.

:class:`ShopperForm` is a plain Django form built from the page's rules: the amount
(fixed, one of the presets, or free within the page's bounds, never more precise than
the currency allows) and the fields the editor chose to ask. CMI requires an e-mail
address and a name (guide §4.1.1): the e-mail is always asked; when the page does not ask
the name, the e-mail address stands for it.

:class:`CMISettingsForm` shows the store key and the API password as empty password
inputs (:class:`cmi_django.credentials.WriteOnlySecretsMixin`): a stored secret is never
sent back to the browser, and leaving the input empty keeps it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from cmi_django.credentials import WriteOnlySecretsMixin
from cmi_django.display import format_money
from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from cmi_core import CMIError
from cmi_core.money import check_amount, get_currency

if TYPE_CHECKING:
    from cmi_wagtail.models import AbstractPaymentPage

__all__ = ["CMISettingsForm", "ShopperForm"]

_PHONE = RegexValidator(r"^[0-9+() .-]*$", _("Digits, spaces and + ( ) . - only."))


class ShopperForm(forms.Form):
    """What the payer types; ``chosen_amount()`` and ``shopper()`` once valid."""

    amount = forms.DecimalField(label=_("Amount"), max_digits=15, decimal_places=3)
    name = forms.CharField(label=_("Full name"), max_length=255)
    email = forms.EmailField(label=_("E-mail address"), max_length=64)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=32,
        validators=[_PHONE],
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    street = forms.CharField(label=_("Address"), max_length=255)
    city = forms.CharField(label=_("City"), max_length=64)
    postal_code = forms.CharField(label=_("Postal code"), max_length=32)

    def __init__(
        self,
        data: Any = None,
        *,
        page: AbstractPaymentPage,
        fixed_amount: Decimal | None = None,
        currency: str | None = None,
    ) -> None:
        super().__init__(data)
        self.page = page
        self.currency = get_currency(currency or page.currency)
        self.fixed_amount = fixed_amount
        if fixed_amount is None and page.amount_rule == "fixed":
            self.fixed_amount = page.fixed_amount
        if self.fixed_amount is not None:
            del self.fields["amount"]
        elif page.amount_rule == "choices":
            self.fields["amount"] = forms.TypedChoiceField(
                label=_("Amount"),
                choices=[(str(a), self.display(a)) for a in page.amount_choices()],
                coerce=Decimal,
                widget=forms.RadioSelect,
            )
        else:
            field = cast("forms.DecimalField", self.fields["amount"])  # declared above
            field.decimal_places = self.currency.minor_units
            if page.min_amount is not None:
                field.min_value = page.min_amount  # type: ignore[assignment]  # stubs say int; Django takes a Decimal
                field.validators.append(_Min(page.min_amount, self))
                field.widget.attrs["min"] = str(page.min_amount)
            if page.max_amount is not None:
                field.max_value = page.max_amount  # type: ignore[assignment]  # stubs say int; Django takes a Decimal
                field.validators.append(_Max(page.max_amount, self))
                field.widget.attrs["max"] = str(page.max_amount)
            field.widget.attrs["step"] = str(self.currency.quantum)
        if not page.ask_name:
            del self.fields["name"]
        if not page.ask_phone:
            del self.fields["phone"]
        if not page.ask_address:
            for name in ("street", "city", "postal_code"):
                del self.fields[name]

    def display(self, amount: Decimal) -> str:
        """``120.50 MAD`` in English, ``120,50 MAD`` in French: money in the page's language."""
        return format_money(Decimal(amount), self.currency.alpha)

    @property
    def fixed_display(self) -> str:
        return self.display(self.fixed_amount) if self.fixed_amount is not None else ""

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount is None or amount <= 0:
            raise forms.ValidationError(_("Enter an amount greater than zero."))
        try:
            check_amount(Decimal(amount), self.currency)
        except CMIError:
            raise forms.ValidationError(
                _("At most %(places)s decimal places.") % {"places": self.currency.minor_units}
            ) from None
        return Decimal(amount)

    def chosen_amount(self) -> Decimal:
        if self.fixed_amount is not None:
            return Decimal(self.fixed_amount)
        return Decimal(self.cleaned_data["amount"])

    def shopper(self) -> dict[str, str]:
        """The payer's answers, as stored on the payment (``data["shopper"]``)."""
        keys = ("name", "email", "phone", "street", "city", "postal_code")
        return {k: str(self.cleaned_data[k]).strip() for k in keys if k in self.cleaned_data}


class _Bound:
    def __init__(self, limit: Decimal, form: ShopperForm) -> None:
        self.limit = limit
        self.form = form

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other.limit == self.limit

    def __hash__(self) -> int:
        return hash(self.limit)


class _Min(_Bound):
    def __call__(self, value: Decimal) -> None:
        if value is not None and value < self.limit:
            raise forms.ValidationError(
                _("The minimum is %(amount)s.") % {"amount": self.form.display(self.limit)},
                code="min_value",
            )


class _Max(_Bound):
    def __call__(self, value: Decimal) -> None:
        if value is not None and value > self.limit:
            raise forms.ValidationError(
                _("The maximum is %(amount)s.") % {"amount": self.form.display(self.limit)},
                code="max_value",
            )


class CMISettingsForm(WriteOnlySecretsMixin, WagtailAdminModelForm):
    """Secrets are write-only: shown as empty password inputs, kept when left empty."""
