"""The dashboard's filter form (amounts of staff actions: :mod:`cmi_django.actions`)."""

from __future__ import annotations

from typing import Any

from cmi_django.i18n import STATE_LABELS
from django import forms
from django.utils.translation import gettext_lazy as _


class PaymentSearchForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        choices=[("", _("All")), *STATE_LABELS.items()],
    )
    order_number = forms.CharField(label=_("Order number"), required=False, max_length=128)
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def filter(self, queryset: Any) -> Any:
        if not self.is_valid():
            return queryset
        data = self.cleaned_data
        if data["state"]:
            queryset = queryset.filter(state=data["state"])
        if data["order_number"]:
            number = data["order_number"].strip()
            queryset = queryset.filter(reference=number) | queryset.filter(oid=number)
        if data["date_from"]:
            queryset = queryset.filter(created_at__date__gte=data["date_from"])
        if data["date_to"]:
            queryset = queryset.filter(created_at__date__lte=data["date_to"])
        return queryset
