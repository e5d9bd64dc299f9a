"""System checks of the Oscar adapter (see :mod:`cmi_django.checks`).

- ``cmi_oscar.E001``: Oscar's checkout payment step is Oscar's stock one, without
  :class:`cmi_oscar.views.CMIPaymentDetailsMixin`: the shopper would be offered Oscar's
  default payment step and never sent to CMI (the checkout app left as
  ``oscar.apps.checkout``, or a fork whose ``PaymentDetailsView`` lacks the mixin).
- ``cmi_oscar.E002``: ``cmi_oscar.urls`` (CMI's callback, guide §4.2) is not mounted.
"""

from __future__ import annotations

from typing import Any

from cmi_django.checks import callback_unmounted
from django.core import checks

__all__ = ["check_oscar"]


def _payment_step_errors() -> list[checks.CheckMessage]:
    from oscar.core.loading import get_class

    from cmi_oscar.views import CMIPaymentDetailsMixin

    try:
        view = get_class("checkout.views", "PaymentDetailsView")
    except Exception as exc:  # noqa: BLE001 - Oscar's loader raises several kinds
        return [
            checks.Error(
                "Oscar's checkout.views.PaymentDetailsView cannot be loaded "
                f"({type(exc).__name__}).",
                hint='Install "cmi_oscar.checkout.apps.CheckoutConfig" in INSTALLED_APPS.',
                id="cmi_oscar.E001",
            )
        ]
    if isinstance(view, type) and issubclass(view, CMIPaymentDetailsMixin):
        return []
    return [
        checks.Error(
            "Oscar's checkout payment step is not CMI's: "
            f"{view.__module__}.{view.__qualname__} lacks CMIPaymentDetailsMixin, so "
            "shoppers would never be sent to CMI.",
            hint='Replace "oscar.apps.checkout.apps.CheckoutConfig" with '
            '"cmi_oscar.checkout.apps.CheckoutConfig" in INSTALLED_APPS, or, in a forked '
            "checkout app, subclass CMIPaymentDetailsMixin in its PaymentDetailsView.",
            id="cmi_oscar.E001",
        )
    ]


def check_oscar(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 and E002 above."""
    return [
        *_payment_step_errors(),
        *callback_unmounted("cmi_oscar:callback", "cmi_oscar.E002", "cmi_oscar.urls"),
    ]
