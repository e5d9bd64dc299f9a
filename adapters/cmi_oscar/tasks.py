"""The Oscar adapter's follow-up work, as tasks (:mod:`cmi_django.tasks`).

The order-placed e-mail is queued by the hook with the authorisation that placed the
order, and sent by the task worker once CMI has its reply. Celery: wrap the plain
:func:`cmi_oscar.placement.send_confirmation` with ``@shared_task`` instead.
"""

from __future__ import annotations

from cmi_django.tasks import task

__all__ = ["send_confirmation"]


@task
def send_confirmation(order_id: int, lang: str) -> None:
    """:func:`cmi_oscar.placement.send_confirmation`: Oscar's order-placed e-mail, in the
    shopper's language ``lang`` (``Payment.lang``, kept in the task's arguments)."""
    from cmi_oscar import placement

    placement.send_confirmation(order_id, lang)
