"""A short per-process memory of what every webhook looks up: installation, channel.

Each webhook needs the installation its ``Saleor-Api-Url`` names (app id and JWKS, to
verify it) and most need the configuration of the payload's channel. Two ORM queries cost
about six times what the rest of a verified webhook does, so both are remembered for
``CMI_SALEOR_CACHE_SECONDS`` (default 5; 0 turns this off) in each worker process.

What keeps that safe:

- only the success path trusts a remembered installation: a signature it does not verify
  or a recipient that is not its app id makes the view check again with the row read
  afresh (which may re-fetch the JWKS, :mod:`cmi_saleor.security`; remembered instead if
  it verifies), so a new token, app id or key is never refused because of this memory;
- unknown API URLs are never remembered (a registration counts at once, and forged
  headers cannot fill the memory);
- saving or deleting an installation or a channel configuration forgets everything in the
  process that did it; other processes see the change within the interval. Until then
  they may answer ``PAYMENT_GATEWAY_INITIALIZE_SESSION`` with the previous capture mode,
  environment or language, or offer (refuse) a channel just disabled (enabled). Payments
  never depend on this memory: ``TRANSACTION_INITIALIZE_SESSION`` reads the channel's row
  (``fresh``), so a disabled channel takes no new payment, and
  :func:`cmi_django.services.create_payment` reads its credentials itself;
- the store key, API password and app token are not loaded here (deferred), and callers
  get their own copy of a remembered row.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from cmi_saleor.models import ChannelConfiguration, SaleorInstallation

__all__ = ["channel_config", "forget", "installation", "remember_installation"]

_MAX_ENTRIES = 1024
_entries: dict[tuple[Any, ...], tuple[float, Any]] = {}
_lock = threading.Lock()
# How many times this process forgot everything: a row read before a forget (say by a
# thread that raced a save) is not remembered after it.
_generation = 0


def seconds() -> float:
    """``CMI_SALEOR_CACHE_SECONDS`` (5): how long a looked-up row is trusted."""
    return max(0.0, float(getattr(settings, "CMI_SALEOR_CACHE_SECONDS", 5)))


def forget() -> None:
    """Drop everything remembered in this process."""
    global _generation  # noqa: PLW0603 - the process's count of forgets
    with _lock:
        _entries.clear()
        _generation += 1


def _remembered(key: tuple[Any, ...]) -> tuple[bool, Any]:
    entry = _entries.get(key)
    if entry is None or entry[0] <= time.monotonic():
        return False, None
    return True, copy.copy(entry[1])


def _remember(key: tuple[Any, ...], value: Any, read_in: int) -> None:
    """Remember ``value``, read from the database in generation ``read_in``."""
    ttl = seconds()
    if ttl <= 0:
        return
    with _lock:
        if read_in != _generation:  # forgotten since it was read: maybe out of date
            return
        if len(_entries) >= _MAX_ENTRIES:
            _entries.clear()
        _entries[key] = (time.monotonic() + ttl, value)


def installation(
    api_url: str, *, fresh: bool = False
) -> tuple[SaleorInstallation | None, bool, int]:
    """The installation of ``api_url`` (token not loaded), whether it was remembered, and
    the generation it was read in.

    ``fresh`` reads the row whatever is remembered. What is read is not remembered: the
    caller gives it to :func:`remember_installation` once a webhook verified with it
    (after any JWKS re-fetch, so that a rotated-out key is not remembered).
    """
    if not fresh:
        hit, found = _remembered(("installation", api_url))
        if hit:
            return found, True, _generation
    read_in = _generation
    row = SaleorInstallation.objects.filter(saleor_api_url=api_url).defer("token").first()
    return row, False, read_in


def remember_installation(found: SaleorInstallation, read_in: int) -> None:
    """Trust ``found`` (which just verified a webhook) for the next webhooks."""
    _remember(("installation", found.saleor_api_url), copy.copy(found), read_in)


def channel_config(
    installation_id: int, slug: str, *, fresh: bool = False
) -> ChannelConfiguration | None:
    """The enabled configuration of channel ``slug`` (secrets not loaded), or None.

    ``fresh`` reads the row whatever is remembered (then remembers it).
    """
    key = ("channel", installation_id, slug)
    if not fresh:
        hit, found = _remembered(key)
        if hit:
            return found
    read_in = _generation
    row = (
        ChannelConfiguration.objects.filter(
            installation_id=installation_id, channel=slug, enabled=True
        )
        .defer("store_key", "api_password")
        .first()
    )
    _remember(key, copy.copy(row), read_in)
    return row


def _forget_on_change(**kwargs: object) -> None:
    # Now, and again once committed: a request of another thread may read the old row
    # in between and remember it.
    forget()
    transaction.on_commit(forget)


def connect() -> None:
    """Forget on every save or delete of the remembered models (from ``AppConfig.ready``)."""
    from django.db.models.signals import post_delete, post_save

    for model in (SaleorInstallation, ChannelConfiguration):
        for name, signal in (("save", post_save), ("delete", post_delete)):
            uid = f"cmi_saleor.cache.{model.__name__}.{name}"
            signal.connect(_forget_on_change, sender=model, dispatch_uid=uid)
