"""``checkout.views`` of the CMI checkout app: Oscar's ``PaymentDetailsView`` with CMI.

A shop that has forked Oscar's checkout already does the same in its own ``views.py``::

    from oscar.apps.checkout import views
    from cmi_oscar.views import CMIPaymentDetailsMixin

    class PaymentDetailsView(CMIPaymentDetailsMixin, views.PaymentDetailsView):
        pass
"""

from __future__ import annotations

from oscar.apps.checkout import views

from cmi_oscar.views import CMIPaymentDetailsMixin

__all__ = ["PaymentDetailsView"]


class PaymentDetailsView(CMIPaymentDetailsMixin, views.PaymentDetailsView):
    """Oscar's payment step, paying through CMI's hosted page."""
