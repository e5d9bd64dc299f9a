"""The Wagtail platform hook: schedules the e-mail receipt.

Site code learns of a payment's changes through the shared layer's signals
(:mod:`cmi_django.signals`, one bus for every platform) and finds the page with
:func:`cmi_wagtail.models.payment_page`.

Registered for ``platform="wagtail"`` from :meth:`cmi_wagtail.apps.CMIWagtailConfig.ready`.
Runs inside the payment's transaction (see :mod:`cmi_django.hooks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cmi_django.hooks import PaymentChange, PaymentHook

if TYPE_CHECKING:
    from cmi_core.effects import Effect

__all__ = ["WagtailHook"]


class WagtailHook(PaymentHook):
    """Schedules the e-mail receipt when enabled (no other Wagtail work: see the module)."""

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        from cmi_wagtail.receipts import receipts_enabled

        if receipts_enabled(payment):
            from cmi_django.tasks import enqueue

            from cmi_wagtail import tasks

            enqueue(tasks.send_receipt, payment.pk)
