"""The dashboard's filter form (amounts of staff actions: :mod:`cmi_django.actions`)."""

from __future__ import annotations

import datetime
from typing import Any

from cmi_django.i18n import STATE_LABELS
from django import forms
from django.conf import settings
from django.utils import timezone
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
        # Ranges on created_at itself (not its __date, a function of the column that no
        # index serves): from the first day's midnight to the midnight after the last day,
        # in the current time zone.
        if data["date_from"]:
            queryset = queryset.filter(created_at__gte=_midnight(data["date_from"]))
        if data["date_to"]:
            queryset = queryset.filter(
                created_at__lt=_midnight(data["date_to"] + datetime.timedelta(days=1))
            )
        return queryset


def _midnight(day: datetime.date) -> datetime.datetime:
    moment = datetime.datetime.combine(day, datetime.time.min)
    return timezone.make_aware(moment) if settings.USE_TZ else moment
