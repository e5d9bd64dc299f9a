from __future__ import annotations

from django.db import models


class Order(models.Model):
    """The platform's own record: what the shopper buys and how far its payment got."""

    NEW, PAID, CAPTURED, REFUNDED, CANCELLED, CHECK = (
        "new",
        "paid",
        "captured",
        "refunded",
        "cancelled",
        "check",
    )

    number = models.CharField(max_length=32, unique=True)
    amount = models.DecimalField(max_digits=15, decimal_places=2)
    email = models.EmailField()
    status = models.CharField(max_length=16, default=NEW)
    note = models.CharField(max_length=255, blank=True)
