"""Wagtail 8 integration of cmi-payments: CMI payment pages editors drop into any site.

Per-site credentials (:class:`~cmi_wagtail.models.CMISettings`), a payment page type
(:class:`~cmi_wagtail.models.AbstractPaymentPage` and the concrete
:class:`~cmi_wagtail.models.PaymentPage`), a "pay button" StreamField block
(:class:`~cmi_wagtail.blocks.PayButtonBlock`), CSRF-exempt callback and return views
(:mod:`cmi_wagtail.urls`, included before ``wagtail_urls``), a payments viewset in the
Wagtail admin, and :func:`~cmi_wagtail.models.payment_page` for receivers of
:mod:`cmi_django.signals`.

Everything that moves money or state goes through the shared Django layer
(:mod:`cmi_django.services`); this package turns Wagtail's pages, forms and admin into
calls to it. See ``docs/wagtail.md``.
"""
