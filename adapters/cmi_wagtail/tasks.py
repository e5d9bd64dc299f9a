"""The Wagtail adapter's follow-up work, as tasks (:mod:`cmi_django.tasks`).

The e-mail receipt (when the site's CMI settings ask for it) is queued by the hook with
the authorisation and sent by the task worker once CMI has its reply. Celery: wrap the
plain :func:`cmi_wagtail.receipts.send_receipt` with ``@shared_task`` instead.
"""

from __future__ import annotations

from cmi_django.tasks import task

__all__ = ["send_receipt"]


@task
def send_receipt(payment_id: int) -> bool:
    """:func:`cmi_wagtail.receipts.send_receipt`, in the payment's language; True when sent."""
    from cmi_wagtail import receipts

    return receipts.send_receipt(payment_id)
