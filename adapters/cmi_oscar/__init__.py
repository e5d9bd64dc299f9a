"""CMI card payments for Django Oscar 4.2 (see docs/oscar.md).

Apps: ``cmi_oscar`` (hook, return views, templates), ``cmi_oscar.checkout.apps.
CheckoutConfig`` (Oscar's checkout with the CMI payment step, in place of
``oscar.apps.checkout.apps.CheckoutConfig``) and ``cmi_oscar.dashboard.apps.
CMIDashboardConfig`` (the dashboard section), on top of the shared ``cmi_django``.
"""
