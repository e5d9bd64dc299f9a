"""The durable record: one :class:`Payment` per CMI attempt, its callbacks, its operations.

A payment's state and amounts are a :class:`cmi_core.PaymentStatus`; :attr:`Payment.status`
reads it from the row and :meth:`Payment.set_status` writes one back. Only the services
(:mod:`cmi_django.services`) move them, through the core's state machine.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from django.db import models

from cmi_core import KnownPayment, PaymentState, PaymentStatus

__all__ = ["CallbackLog", "Operation", "Payment"]

_MONEY: dict[str, Any] = {"max_digits": 15, "decimal_places": 3}


class Payment(models.Model):
    """One CMI payment attempt (one ``oid``)."""

    oid = models.CharField(max_length=64, unique=True)
    platform = models.CharField(max_length=32)
    reference = models.CharField(max_length=128, blank=True)
    config_key = models.CharField(max_length=100, default="default", db_index=True)
    amount = models.DecimalField(**_MONEY)
    currency = models.CharField(max_length=3, default="504")
    capture_mode = models.CharField(
        max_length=6, choices=[("auto", "auto"), ("manual", "manual")], default="auto"
    )
    lang = models.CharField(max_length=2, default="fr")
    email = models.CharField(max_length=254, blank=True)
    state = models.CharField(
        max_length=32,
        choices=[(s.value, s.value) for s in PaymentState],
        default=PaymentState.CREATED.value,
        db_index=True,
    )
    authorised_amount = models.DecimalField(**_MONEY, default=Decimal(0))
    captured_amount = models.DecimalField(**_MONEY, default=Decimal(0))
    refunded_amount = models.DecimalField(**_MONEY, default=Decimal(0))
    declined_attempts = models.PositiveIntegerField(default=0)
    attention_reason = models.TextField(blank=True)
    trans_id = models.CharField(max_length=64, blank=True)
    auth_code = models.CharField(max_length=64, blank=True)
    host_ref_num = models.CharField(max_length=64, blank=True)
    masked_pan = models.CharField(max_length=32, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    proc_return_code = models.CharField(max_length=8, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    #: The signed request fields CMI was sent (names and values; no secret): a callback
    #: or return must bring every one of them back unchanged (see docs/security.md).
    request_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        # The staff lists (docs/django-layer.md): each list reads one index range, newest
        # first, whatever the table's size. The platform's and the reference's own indexes
        # would be prefixes of these.
        indexes = (
            models.Index(fields=["platform", "created_at", "id"], name="cmi_payment_platform_new"),
            models.Index(
                fields=["platform", "reference", "created_at", "id"], name="cmi_payment_reference"
            ),
            models.Index(fields=["created_at", "id"], name="cmi_payment_created"),
        )

    def __str__(self) -> str:
        return f"{self.oid} ({self.state})"

    @property
    def status(self) -> PaymentStatus:
        """The state and amounts as the core's :class:`PaymentStatus`."""
        return PaymentStatus(
            state=PaymentState(self.state),
            amount=self.amount,
            authorised=self.authorised_amount,
            captured=self.captured_amount,
            refunded=self.refunded_amount,
            declined_attempts=self.declined_attempts,
            attention_reason=self.attention_reason,
        )

    #: The columns :meth:`set_status` writes (for ``save(update_fields=...)``).
    STATUS_FIELDS: ClassVar[tuple[str, ...]] = (
        "state",
        "authorised_amount",
        "captured_amount",
        "refunded_amount",
        "declined_attempts",
        "attention_reason",
    )

    def set_status(self, status: PaymentStatus) -> None:
        """Copy a status from the core onto the row (not saved): :attr:`STATUS_FIELDS`."""
        self.state = status.state.value
        self.authorised_amount = status.authorised
        self.captured_amount = status.captured
        self.refunded_amount = status.refunded
        self.declined_attempts = status.declined_attempts
        self.attention_reason = status.attention_reason

    def known_payment(self) -> KnownPayment:
        """What :func:`cmi_core.decide_callback` needs to know of this payment."""
        return KnownPayment(
            oid=self.oid,
            amount=self.amount,
            currency=self.currency,
            status=self.status,
            capture_mode="manual" if self.capture_mode == "manual" else "auto",
            trans_id=self.trans_id,
        )


class CallbackLog(models.Model):
    """Every callback and okUrl/failUrl POST, as received, with what was answered."""

    KINDS = (("callback", "callback"), ("ok", "ok"), ("fail", "fail"))

    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks"
    )
    oid = models.CharField(max_length=64, blank=True, db_index=True)
    kind = models.CharField(max_length=8, choices=KINDS)
    fields = models.JSONField(default=dict, blank=True)
    verified = models.BooleanField(default=False)
    outcome = models.CharField(max_length=32, blank=True)
    reply = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    #: Which reading of the hash rules verified the message (see docs/core.md).
    reading = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        # The staff list (cmi_django.admin), newest first, and its outcome filter: the
        # filter's choices walk the outcome index, a filtered page reads one range of it.
        indexes = (
            models.Index(fields=["created_at", "id"], name="cmi_callback_created"),
            models.Index(fields=["outcome", "created_at", "id"], name="cmi_callback_outcome"),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.oid} {self.outcome}"


class Operation(models.Model):
    """Every staff or API operation sent to CMI for a payment, and CMI's answer.

    A money-moving operation (capture, void, refund) is written ``pending`` *before* CMI
    is called, in its own committed transaction, then marked ``succeeded`` or ``failed``
    by CMI's answer; ``unknown`` when no usable answer came (CMI may or may not have
    acted). ``pending`` and ``unknown`` operations are never sent again:
    :func:`cmi_django.services.refresh` (and ``manage.py cmi_reconcile``) settle them from
    CMI's order history. ``succeeded`` mirrors ``state == "succeeded"``.
    """

    KINDS = (
        ("capture", "capture"),
        ("void", "void"),
        ("refund", "refund"),
        ("status", "status"),
    )
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    STATES = (
        (PENDING, "pending"),
        (SUCCEEDED, "succeeded"),
        (FAILED, "failed"),
        (UNKNOWN, "unknown"),
    )
    #: States of an operation that may still have moved money at CMI.
    OPEN = (PENDING, UNKNOWN)

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=8, choices=KINDS)
    amount = models.DecimalField(**_MONEY, null=True, blank=True)
    state = models.CharField(max_length=9, choices=STATES, default=PENDING, db_index=True)
    succeeded = models.BooleanField(default=False)
    key = models.CharField(max_length=128, null=True, blank=True)
    response = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    user = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        # The staff list (cmi_django.admin), newest first, and its kind filter: one index
        # range at any size (operations are written rarely: staff actions, reconciling).
        indexes = (
            models.Index(fields=["created_at", "id"], name="cmi_operation_created"),
            models.Index(fields=["kind", "created_at", "id"], name="cmi_operation_kind"),
        )
        constraints = (
            # A key names one operation that may have moved money (pending, unknown or
            # succeeded); only failed tries may repeat it.
            models.UniqueConstraint(
                fields=["payment", "kind", "key"],
                condition=models.Q(
                    key__isnull=False, state__in=["pending", "unknown", "succeeded"]
                ),
                name="cmi_django_operation_key_once",
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.payment_id} {self.state}"
