"""The URL patterns of this project's views that may call CMI (callbacks, returns, staff
actions, Saleor's webhooks), found by walking the suite's URL configuration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

PACKAGES = ("cmi_django", "cmi_oscar", "cmi_wagtail", "cmi_saleor")
#: Views that may call CMI (its API, or through the shared layer's services).
NAMES = frozenset(
    {
        "callback_view",
        "webhook",
        "return_view",
        "ReturnView",
        "OkReturnView",
        "FailReturnView",
        "PaymentActionView",
    }
)


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Callable[..., Any]]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _ours(view: Callable[..., Any]) -> bool:
    """A function view of ours, or a class-based one whose class (or a base) is ours."""
    view_class = getattr(view, "view_class", None)
    kinds: list[Any] = list(view_class.__mro__) if view_class is not None else [view]
    return any(
        getattr(kind, "__module__", "").startswith(PACKAGES)
        and getattr(kind, "__name__", "") in NAMES
        for kind in kinds
    )


def money_views() -> list[tuple[str, Callable[..., Any]]]:
    return [(route, view) for route, view in _walk(get_resolver().url_patterns) if _ours(view)]


def atomic_ones() -> list[str]:
    """Routes of those views that would run inside ATOMIC_REQUESTS' transaction."""
    return [
        route
        for route, view in money_views()
        if "default" not in getattr(view, "_non_atomic_requests", set())
    ]
