"""Use ``cmi_oscar.checkout.apps.CheckoutConfig`` in place of Oscar's checkout app.

Oscar loads ``checkout.views.PaymentDetailsView`` with ``get_class``, which looks in the
installed checkout app's package first: this one, whose ``views`` module adds CMI to
Oscar's view. Every other checkout class still comes from Oscar.
"""

from __future__ import annotations

from oscar.apps.checkout import apps


class CheckoutConfig(apps.CheckoutConfig):
    name = "cmi_oscar.checkout"
    label = "checkout"
