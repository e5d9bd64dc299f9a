"""Removed: Wagtail's payment news is on the shared layer's one bus, :mod:`cmi_django.signals`.

Earlier releases sent from here six signals of its own (``sender`` = the page class, ``page=``).
Connect to the signal of the same name in :mod:`cmi_django.signals` (``sender=Payment``,
every platform) and find the page with :func:`cmi_wagtail.models.payment_page`::

    from cmi_django.signals import payment_authorised
    from cmi_wagtail.models import PaymentPage, payment_page

    @receiver(payment_authorised)
    def membership_paid(sender, payment, result, **kwargs):
        if isinstance(payment_page(payment), PaymentPage):
            ...

Importing one of the old names raises :class:`ImportError` saying so, rather than
leaving a receiver silently connected to a signal nobody sends.
"""

from __future__ import annotations

__all__: list[str] = []

_MOVED = frozenset(
    {
        "payment_authorised",
        "payment_captured",
        "payment_declined",
        "payment_needs_attention",
        "payment_refunded",
        "payment_voided",
    }
)


def __getattr__(name: str) -> object:
    if name in _MOVED:
        msg = (
            f"cmi_wagtail.signals.{name} is gone: connect to cmi_django.signals.{name} "
            "(sender=Payment) and find the page with cmi_wagtail.models.payment_page(payment)"
        )
        raise ImportError(msg)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
