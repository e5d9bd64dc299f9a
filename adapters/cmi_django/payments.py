"""Creating a payment: the row (REDIRECTED) and the form the shopper posts to CMI (guide §4.1).

- :func:`create_payment`: build the signed request with :func:`cmi_core.build_payment_request`,
  store the payment with the request's fields (so that CMI's answers can be bound to it)
  and return both;
- :func:`new_oid`: a fresh CMI-safe order id; :func:`callback_url`: the absolute URL of
  the callback view.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from cmi_core import (
    Event,
    PaymentOrder,
    PaymentRequest,
    PaymentStatus,
    apply,
    build_payment_request,
)
from cmi_django.config import get_config
from cmi_django.models import Payment

__all__ = ["callback_url", "create_payment", "new_oid"]


def new_oid(prefix: str = "cmi") -> str:
    """A fresh, CMI-safe oid ``<prefix>-<12 random digits>`` not used by any payment."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-")[:48] or "cmi"
    while True:
        oid = f"{clean}-{secrets.randbelow(10**12):012d}"
        if not Payment.objects.filter(oid=oid).exists():
            return oid


def callback_url(request: Any = None) -> str | None:
    """The absolute URL of :func:`cmi_django.views.callback_view` (``cmi_django:callback``).

    Built from ``request`` when given, else from ``CMI_PUBLIC_URL``; None when neither
    is available or ``cmi_django.urls`` is not included with its namespace.
    """
    try:
        path = reverse("cmi_django:callback")
    except NoReverseMatch:
        return None
    if request is not None:
        return str(request.build_absolute_uri(path))
    base = getattr(settings, "CMI_PUBLIC_URL", None)
    return f"{base.rstrip('/')}{path}" if base else None


def create_payment(
    *,
    platform: str,
    reference: str,
    order: PaymentOrder | Mapping[str, Any],
    config_key: str = "default",
    data: Mapping[str, Any] | None = None,
) -> tuple[Payment, PaymentRequest]:
    """Store a REDIRECTED payment and return it with its signed form (guide §4.1).

    ``order`` is a :class:`cmi_core.PaymentOrder` or its keyword arguments; a missing
    ``oid`` is made by :func:`new_oid` from ``platform``, a missing ``callback_url`` from
    ``CMI_PUBLIC_URL``. Raises :class:`cmi_core.ValidationError` naming a bad field.
    """
    config = get_config(config_key)
    if isinstance(order, PaymentOrder):
        values = {f.name: getattr(order, f.name) for f in dataclasses.fields(order)}
    else:
        values = dict(order)
    if not values.get("oid"):
        values["oid"] = new_oid(platform)
    if not values.get("callback_url"):
        values["callback_url"] = callback_url()
    neutral = PaymentOrder(**values)
    request = build_payment_request(config, neutral)
    fields = request.as_dict()
    payment = Payment(
        oid=fields["oid"],
        platform=platform,
        reference=str(reference)[:128],
        config_key=config_key,
        amount=neutral.amount,
        currency=fields["currency"],
        capture_mode=config.capture_mode,
        lang=fields["lang"],
        email=fields["email"],
        data=dict(data or {}),
        request_fields={k: v for k, v in fields.items() if k.lower() != "hash"},
    )
    payment.set_status(apply(PaymentStatus.new(neutral.amount), Event.redirect()))
    payment.save()
    return payment, request
