"""What the app keeps: installations, per-channel CMI credentials, transaction mappings.

- :class:`SaleorInstallation`: one Saleor API URL that installed the app, with its app
  token (encrypted), app id and JWKS (for webhook signatures and Dashboard JWTs).
- :class:`ChannelConfiguration`: the CMI merchant account of one channel of one
  installation; secrets encrypted (:class:`cmi_django.crypto.EncryptedTextField`). Its
  config key ``saleor:<pk>`` is what :class:`cmi_django.models.Payment` rows carry.
- :class:`TransactionMap`: the short CMI ``oid`` <-> the Saleor transaction, the storefront
  return URL, and the :class:`~cmi_django.models.Payment` (``platform="saleor"``,
  ``reference`` = the transaction id).
- :class:`EventReport`: one ``transactionEventReport`` the app owes Saleor, written in the
  payment change's own transaction and sent after its commit (:mod:`cmi_saleor.reports`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cmi_django.config import JoinedConfig
from cmi_django.credentials import CredentialsModel
from cmi_django.crypto import EncryptedTextField, decrypt, decryption_keys
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models
from django.db.models import Expression
from django.db.models.expressions import RawSQL

from cmi_core import CMIConfig
from cmi_core.codes import LANGUAGE_CHOICES

__all__ = [
    "ChannelConfiguration",
    "EventReport",
    "PendingRequest",
    "SaleorInstallation",
    "TransactionMap",
    "joined_config",
    "resolve_config",
]


class SaleorInstallation(models.Model):
    """A Saleor instance that installed the app (the latest registration wins)."""

    saleor_api_url = models.URLField(max_length=500, unique=True)
    app_id = models.CharField(max_length=128)
    token = EncryptedTextField()
    jwks = models.JSONField(default=dict, blank=True)
    jwks_fetched_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Saleor installation"

    def __str__(self) -> str:
        return self.saleor_api_url


class ChannelConfiguration(CredentialsModel):
    """CMI credentials and options for one Saleor channel (:class:`CredentialsModel`)."""

    CAPTURE_MODES = (("auto", "automatic (charge)"), ("manual", "manual (authorize)"))
    ENVIRONMENTS = (("test", "test"), ("production", "production"))
    LANGS = LANGUAGE_CHOICES  # the core's one list, shared with Wagtail

    installation = models.ForeignKey(
        SaleorInstallation, on_delete=models.CASCADE, related_name="channels"
    )
    channel = models.CharField("channel slug", max_length=255)
    enabled = models.BooleanField(default=True)
    client_id = models.CharField("CMI client id", max_length=15)
    store_key = EncryptedTextField("store key")
    api_username = models.CharField("API user name", max_length=64, blank=True)
    api_password = EncryptedTextField("API password", blank=True)
    capture_mode = models.CharField(max_length=6, choices=CAPTURE_MODES, default="auto")
    environment = models.CharField(max_length=10, choices=ENVIRONMENTS, default="test")
    base_url = models.URLField(
        "gateway base URL",
        blank=True,
        help_text="Only for a CMI emulator such as `cmi sandbox`; empty for CMI itself.",
    )
    lang = models.CharField("page language", max_length=2, choices=LANGS, default="fr")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("installation", "channel"), name="cmi_saleor_one_config_per_channel"
            ),
        )

    def __str__(self) -> str:
        # The installation's URL, without loading its token (which a key rotated without
        # its fallback cannot decrypt: the admin must still show this row).
        url: str | None
        if type(self).installation.is_cached(self):
            url = self.installation.saleor_api_url
        else:
            url = (
                SaleorInstallation.objects.filter(pk=self.installation_id)
                .values_list("saleor_api_url", flat=True)
                .first()
            )
        return f"{self.channel} ({url})"

    @property
    def config_key(self) -> str:
        return f"saleor:{self.pk}"

    def credentials_label(self) -> str:
        return f"Saleor channel {self.channel!r}"


#: The columns :func:`joined_config` reads with the payment (the secrets encrypted).
_CONFIG_COLUMNS = (
    "channel",
    "client_id",
    "store_key",
    "api_username",
    "api_password",
    "capture_mode",
    "environment",
    "base_url",
    "lang",
)


def _config_row(alias: str) -> Expression | None:
    """The payment's channel configuration as one JSON text, read in the payment's own
    statement (:class:`cmi_django.config.JoinedConfig`); NULL for a key that is not
    ``saleor:<digits>`` (so the cast never fails) or that names no row.

    Written as SQL (PostgreSQL and SQLite; None elsewhere: the resolver's own query
    then): the ORM's expressions for the same subquery cost about 0.9 ms of Python to
    compile on every callback, more than the statement they save.
    """
    sql = _config_sql(alias)
    # S611: the SQL is built from the models' table and column names only, no input
    return None if sql is None else RawSQL(sql, (), models.TextField())  # noqa: S611


@lru_cache(maxsize=8)
def _config_sql(alias: str) -> str | None:
    """The subquery for the database ``alias`` names: its own dialect and quoting."""
    connection = connections[alias]
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        return None
    quote = connection.ops.quote_name
    payment = apps.get_model("cmi_django", "Payment")._meta
    key = f"{quote(payment.db_table)}.{quote(str(payment.get_field('config_key').column))}"
    meta = ChannelConfiguration._meta
    pairs = ", ".join(
        f"'{name}', c.{quote(str(getattr(meta.get_field(name), 'column', name)))}"
        for name in _CONFIG_COLUMNS
    )
    if vendor == "postgresql":
        row = f"json_build_object({pairs})::text"
        pk = f"CASE WHEN {key} ~ '^saleor:[0-9]{{1,18}}$' THEN substr({key}, 8)::bigint END"
    else:
        row = f"json_object({pairs})"
        digits = f"substr({key}, 8)"
        pk = (
            f"CASE WHEN {key} GLOB 'saleor:[0-9]*' AND NOT {digits} GLOB '*[^0-9]*' "
            f"AND length({key}) <= 25 THEN CAST({digits} AS INTEGER) END"
        )
    table, pk_column = quote(meta.db_table), quote(str(meta.pk.column))
    return f"(SELECT {row} FROM {table} c WHERE c.{pk_column} = {pk})"  # noqa: S608 - names only


def _channel_pk(rest: str) -> int | None:
    """The channel configuration's pk a key's ``<rest>`` names: 1 to 18 ASCII digits, as
    :func:`_config_sql` reads it (``str.isdigit`` alone accepts Arabic-Indic digits, which
    ``int`` reads, and superscripts, which it refuses), else None."""
    return int(rest) if rest.isascii() and rest.isdigit() and len(rest) <= 18 else None


def _config_from_row(rest: str, value: Any) -> CMIConfig:
    """The :class:`CMIConfig` of the row :func:`_config_row` read (its secrets decrypted).

    Built once per row text (secrets still encrypted in it) and keys: a channel changed in
    the Dashboard, in the database or by a key rotation reads as another text, and a key
    removed from the settings is no longer in the cache's key."""
    return _config_built(rest, value if isinstance(value, str) else None, decryption_keys())


@lru_cache(maxsize=64)
def _config_built(rest: str, value: str | None, keys: tuple[str, ...]) -> CMIConfig:
    row = json.loads(value) if isinstance(value, str) else None
    pk = _channel_pk(rest)
    if not isinstance(row, dict) or pk is None:
        raise ImproperlyConfigured(f"saleor:{rest}: no such CMI channel configuration")
    values = {name: row.get(name) or "" for name in _CONFIG_COLUMNS}
    for name in ("store_key", "api_password"):  # as EncryptedTextField reads them
        values[name] = decrypt(values[name]) if values[name] else values[name]
    return ChannelConfiguration(pk=pk, **values).cmi_config()


#: How the callback reads a Saleor payment's store key with the payment itself.
joined_config = JoinedConfig(expression=_config_row, build=_config_from_row)


def resolve_config(rest: str) -> CMIConfig:
    """``cmi_django.config.get_config("saleor:<pk>")``: the channel configuration's."""
    # A secret no configured key decrypts raises cmi_django.crypto.DecryptionError (an
    # ImproperlyConfigured naming the key's setting): not "no such configuration".
    pk = _channel_pk(rest)
    found = (
        None
        if pk is None
        else ChannelConfiguration.objects.select_related(None).filter(pk=pk).first()
    )
    if found is None:
        raise ImproperlyConfigured(f"saleor:{rest}: no such CMI channel configuration")
    return found.cmi_config()


class TransactionMap(models.Model):
    """One CMI payment (``oid``) made for one Saleor transaction."""

    oid = models.CharField(max_length=64, unique=True)
    payment = models.OneToOneField(
        "cmi_django.Payment", on_delete=models.CASCADE, related_name="saleor_transaction"
    )
    installation = models.ForeignKey(
        SaleorInstallation, null=True, on_delete=models.SET_NULL, related_name="transactions"
    )
    saleor_api_url = models.URLField(max_length=500)
    channel = models.CharField(max_length=255)
    transaction_id = models.CharField(max_length=255, db_index=True)
    transaction_token = models.CharField(max_length=64, blank=True)
    merchant_reference = models.CharField(max_length=255, blank=True)
    source_type = models.CharField(max_length=16, blank=True)
    source_id = models.CharField(max_length=255, blank=True)
    return_url = models.URLField(max_length=2048, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return f"{self.oid} -> {self.transaction_id}"


class PendingRequest(models.Model):
    """A request the app answered as pending: Saleor shows a ``*_REQUEST`` event with
    ``psp_reference`` until the app reports the same reference's success or failure.

    Two sources: a charge, refund or cancel whose outcome was still unknown when Saleor's
    webhook had to be answered (``operation`` is the open
    :class:`~cmi_django.models.Operation`), and a ``transactionProcess`` answered
    ``*_REQUEST`` for a payment staff must check (``operation`` empty). Saleor never asks
    again about either (a REQUEST is a final session status for ``transactionProcess``),
    so :func:`cmi_saleor.hooks.resolve_requests` reports the resolution once the
    operation settles or the payment leaves NEEDS_ATTENTION.
    """

    mapping = models.ForeignKey(
        TransactionMap, on_delete=models.CASCADE, related_name="pending_requests"
    )
    operation = models.OneToOneField(
        "cmi_django.Operation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="saleor_request",
    )
    #: The event family: AUTHORIZATION, CHARGE, REFUND or CANCEL.
    family = models.CharField(max_length=16)
    psp_reference = models.CharField(max_length=128)
    amount = models.DecimalField(max_digits=15, decimal_places=3)
    created = models.DateTimeField(auto_now_add=True)
    #: The event type reported to resolve it (``CHARGE_SUCCESS``...), once reported.
    resolution = models.CharField(max_length=32, blank=True)
    resolved = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.UniqueConstraint(
                fields=("mapping", "family", "psp_reference"),
                name="cmi_saleor_one_pending_request_per_reference",
            ),
        )

    def __str__(self) -> str:
        return f"{self.family}_REQUEST {self.psp_reference} ({self.resolution or 'open'})"


class EventReport(models.Model):
    """One ``transactionEventReport`` owed to Saleor: its mutation variables, as decided.

    Written in the same transaction as the payment change it reports (so a change is never
    committed without the news of it being owed), sent after the commit, and deleted once
    Saleor recorded it (``alreadyProcessed`` and ``ALREADY_EXISTS`` count): the table
    holds what is still owed, with the reason (``attempts``, ``last_error``). Saleor keeps
    what it was told (the transaction's events). ``claimed_until``: a sender is on it
    until then (one sender per report at a time). The reports of one transaction are sent
    in ``id`` order (Saleor's amounts depend on the order of its events).
    """

    mapping = models.ForeignKey(TransactionMap, on_delete=models.CASCADE, related_name="reports")
    event_type = models.CharField(max_length=32)
    variables = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.event_type} owed for {self.mapping_id}"
