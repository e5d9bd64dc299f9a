"""The Oscar adapter's follow-up work, as tasks (:mod:`cmi_django.tasks`).

The order-placed e-mail is queued by the hook with the authorisation that placed the
order, and sent by the task worker once CMI has its reply (or, with the immediate
backend, right after the commit, from the order object the hook placed). Celery: wrap the plain
:func:`cmi_oscar.placement.send_confirmation` with ``@shared_task`` instead.
"""

from __future__ import annotations

from cmi_django.tasks import handed, task

__all__ = ["send_confirmation"]


@task
def send_confirmation(order_id: int, lang: str) -> None:
    """:func:`cmi_oscar.placement.send_confirmation`: Oscar's order-placed e-mail, in the
    shopper's language ``lang`` (``Payment.lang``, kept in the task's arguments).

    Run right after the callback's commit by the immediate backend, it sends the order
    the hook just placed (handed over by :func:`cmi_django.tasks.enqueue`), as Oscar's
    checkout does; run by a worker, it reads the order by its id."""
    from cmi_oscar import placement

    order = handed(send_confirmation, order_id, lang).get("order")
    placement.send_confirmation(order_id, lang, order=order)
