from __future__ import annotations

from cmi_django.crypto import EncryptedTextField
from django.db import models


class HookCall(models.Model):
    """One hook call, written inside the payment's transaction (so rolled back with it)."""

    oid = models.CharField(max_length=64)
    method = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=15, decimal_places=3, null=True)
    detail = models.TextField(blank=True)


class Credential(models.Model):
    """A model keeping a secret the way Saleor/Wagtail adapters will."""

    name = models.CharField(max_length=32)
    secret = EncryptedTextField(blank=True)
