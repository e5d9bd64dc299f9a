"""Saleor's keys: fetching the JWKS, webhook signatures, Dashboard JWTs.

Webhooks carry ``Saleor-Signature``, a detached JWS (RFC 7797, ``b64: false``) over the
raw body, RS256, made with a key of ``<origin of the API URL>/.well-known/jwks.json``.
The Dashboard gives the app's page a JWT (type ``thirdparty``) signed with the same keys.
A signature that fails with the stored JWKS may re-fetch it once (key rotation), if the
installation's last fetch (``jwks_fetched_at``) is older than
``CMI_SALEOR_JWKS_UNKNOWN_KID_INTERVAL`` seconds (default 5) when the token names a key id
the stored JWKS lacks, or ``CMI_SALEOR_JWKS_REFETCH_INTERVAL`` (default 60) when it names a
known one. The right to fetch is claimed in the database (a conditional UPDATE of
``jwks_fetched_at``), so however many requests arrive, from however many workers, forged
key ids cost Saleor at most one JWKS fetch per interval per installation; a failed fetch
counts too. A genuine rotation verifies on its first webhook unless the JWKS was fetched
less than the short interval before it (then on the first one after).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from django.db.models import Q
from django.utils import timezone
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import InvalidTokenError, PyJWKError, PyJWKSetError

from cmi_saleor import conf
from cmi_saleor.jsonbody import BadJSONError, nests_too_deep, read_object
from cmi_saleor.models import SaleorInstallation

__all__ = [
    "InvalidSignatureError",
    "fetch_jwks",
    "jwks_url",
    "verify_dashboard_token",
    "verify_webhook",
]

logger = logging.getLogger("cmi_saleor")

T = TypeVar("T")
ALGORITHMS = ["RS256"]
#: The largest JWKS read from Saleor (a few keys: a few KiB).
MAX_JWKS = 256 * 1024


class InvalidSignatureError(Exception):
    """A signature or token that Saleor's keys do not verify (or JWKS unavailable)."""


def jwks_url(api_url: str) -> str:
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"


def fetch_jwks(api_url: str) -> dict[str, Any]:
    """Saleor's JWKS; :class:`InvalidSignatureError` when it cannot be read."""
    try:
        response = requests.get(
            jwks_url(api_url), timeout=conf.http_timeout(), allow_redirects=False
        )
        response.raise_for_status()
        jwks = read_object(response.content, limit=MAX_JWKS)
        _keyset(jwks)  # refuse what PyJWT cannot use
    except (requests.RequestException, BadJSONError, InvalidSignatureError) as exc:
        raise InvalidSignatureError(f"cannot read Saleor's JWKS: {type(exc).__name__}") from exc
    return dict(jwks)


_CACHE: dict[str, PyJWKSet] = {}
_CACHE_LOCK = threading.Lock()


def _keyset(jwks: Any) -> PyJWKSet:
    """The parsed key set, cached by content (parsing RSA keys costs more than verifying).

    The cache holds public keys only and is keyed on the exact JWKS document, so a
    re-fetched (rotated) JWKS is parsed afresh and a key gone from it is never used again;
    every signature is still verified, on every request.
    """
    try:
        text = json.dumps(jwks, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidSignatureError("unusable JWKS") from exc
    found = _CACHE.get(text)
    if found is None:
        try:
            found = PyJWKSet.from_dict(jwks)
        except (PyJWKError, PyJWKSetError, TypeError, AttributeError, KeyError) as exc:
            raise InvalidSignatureError("unusable JWKS") from exc
        with _CACHE_LOCK:
            if len(_CACHE) > 64:
                _CACHE.clear()
            _CACHE[text] = found
    return found


def _key(jwks: Any, kid: str | None) -> PyJWK:
    keys = _keyset(jwks).keys
    if kid is None and len(keys) == 1:
        return keys[0]
    for key in keys:
        if key.key_id == kid:
            return key
    raise InvalidSignatureError("no key with this kid")


def _kid(token: str) -> str | None:
    """The key id the token's header names (unverified: it only picks the key to try).

    Read here rather than with ``jwt.get_unverified_header``, which checks and decodes
    every segment (a seventh of a webhook's cost); the verification that follows does.
    """
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    # UnicodeDecodeError is a ValueError; RecursionError: deeply nested JSON (as PyJWT)
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise InvalidSignatureError("malformed signature") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _claim_fetch(installation: SaleorInstallation, interval: float) -> bool:
    """Whether this request may fetch the JWKS now (then the fetch time is set to now).

    One conditional UPDATE: of concurrent requests, in any process, at most one sees the
    last fetch older than ``interval`` and moves it to now; the others then see it recent.
    """
    now = timezone.now()
    stale = Q(jwks_fetched_at__isnull=True) | Q(
        jwks_fetched_at__lte=now - timedelta(seconds=interval)
    )
    claimed: bool = (
        SaleorInstallation.objects.filter(stale, pk=installation.pk).update(jwks_fetched_at=now)
        == 1
    )
    if claimed:
        installation.jwks_fetched_at = now
    return claimed


def _with_refetch(
    installation: SaleorInstallation,
    kid: str | None,
    check: Callable[[Any], T],
    *,
    refetch: bool = True,
) -> T:
    """``check(jwks)`` with the stored JWKS, then once more with a fresh one if allowed.

    ``kid`` is the key id the token's header names (read once by the caller). Without
    ``refetch``, the stored JWKS is the only one tried.
    """
    try:
        return check(installation.jwks)
    except (InvalidSignatureError, InvalidTokenError) as exc:
        if not refetch:
            raise InvalidSignatureError(str(exc)) from exc
        first = exc
    known_kid = any(
        isinstance(k, dict) and k.get("kid") == kid
        for k in (installation.jwks or {}).get("keys", [])
    )
    interval = conf.jwks_refetch_interval()
    if not known_kid:
        interval = min(interval, conf.jwks_unknown_kid_interval())
    recent = installation.jwks_fetched_at is not None and (
        timezone.now() - installation.jwks_fetched_at < timedelta(seconds=interval)
    )
    if recent:
        raise InvalidSignatureError(str(first)) from first
    if not _claim_fetch(installation, interval):
        # Another request (maybe in another worker) fetched it since this one read the
        # installation: its JWKS, if newer than ours, is in the database by now.
        stored = (
            SaleorInstallation.objects.filter(pk=installation.pk)
            .values_list("jwks", flat=True)
            .first()
        )
        if stored is None or stored == installation.jwks:
            raise InvalidSignatureError(str(first)) from first
        installation.jwks = stored
        try:
            return check(stored)
        except (InvalidSignatureError, InvalidTokenError) as exc:
            raise InvalidSignatureError(str(exc)) from exc
    fresh = fetch_jwks(installation.saleor_api_url)
    fetched_at = timezone.now()
    SaleorInstallation.objects.filter(pk=installation.pk).update(
        jwks=fresh, jwks_fetched_at=fetched_at
    )
    installation.jwks, installation.jwks_fetched_at = fresh, fetched_at
    try:
        return check(fresh)
    except (InvalidSignatureError, InvalidTokenError) as exc:
        raise InvalidSignatureError(str(exc)) from exc


def verify_webhook(
    installation: SaleorInstallation, body: bytes, signature: str, *, refetch: bool = True
) -> None:
    """Check ``Saleor-Signature`` over the raw ``body``; :class:`InvalidSignatureError` if wrong.

    ``refetch=False``: never fetch the JWKS, for an installation remembered by
    :mod:`cmi_saleor.cache` (the caller checks again with the row itself).
    """
    if not signature or signature.count(".") != 2:
        raise InvalidSignatureError("missing or malformed Saleor-Signature")

    kid = _kid(signature)

    def check(jwks: Any) -> None:
        key = _key(jwks, kid)
        try:
            jwt.api_jws.decode_complete(
                signature, key=key.key, algorithms=ALGORITHMS, detached_payload=body
            )
        except RecursionError as exc:  # PyJWT reads JSON catching ValueError only
            raise InvalidSignatureError("malformed signature") from exc

    _with_refetch(installation, kid, check, refetch=refetch)


def verify_dashboard_token(
    installation: SaleorInstallation, token: str, permission: str = "HANDLE_PAYMENTS"
) -> dict[str, Any]:
    """The claims of a Dashboard JWT for this app, with ``permission``; else raises."""
    if not token or token.count(".") != 2:
        raise InvalidSignatureError("missing or malformed token")

    kid = _kid(token)

    def check(jwks: Any) -> dict[str, Any]:
        key = _key(jwks, kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key.key, algorithms=ALGORITHMS, options={"require": ["exp"]}
            )
        except RecursionError as exc:  # deeply nested claims (PyJWT catches ValueError)
            raise InvalidSignatureError("malformed token") from exc
        if nests_too_deep(claims):  # the same limit as every JSON body, on any Python
            raise InvalidSignatureError("malformed token")
        return claims

    claims = _with_refetch(installation, kid, check)
    if claims.get("app") != installation.app_id:
        raise InvalidSignatureError("the token is not for this app")
    permissions = claims.get("permissions")
    if not isinstance(permissions, list) or permission not in permissions:
        raise InvalidSignatureError(f"the user lacks {permission}")
    return claims
