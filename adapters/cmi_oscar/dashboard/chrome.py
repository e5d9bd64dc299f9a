"""Oscar's dashboard navigation bar for the CMI payments list, drawn once per outcome.

Oscar builds the bar on every dashboard request (``{% dashboard_navigation user %}`` in
the ``dashboard_nav`` block of ``oscar/dashboard/layout.html``): each menu entry's URL is
reversed and resolved again to find its permissions, then checked for the user, and the
block's template draws the visible entries. What the bar shows is a function of:

- which entries the user may see: with Oscar's ``default_access_fn`` for every entry, an
  entry is shown exactly when ``check_permissions(user, permissions)`` holds, its
  permissions being those of the dashboard view its URL resolves to (fixed for a URL
  configuration);
- the language (the labels), the URL configuration and script prefix (the links).

:func:`navigation` checks each entry's permissions for this user with Oscar's own
``check_permissions`` (each request, as Oscar does) and keeps the block's drawing under
those outcomes, the language and the URLs: two staff members share a drawing only when
Oscar would show them the same entries. It answers None, and Oscar's block draws as
usual, unless Oscar's code and block are the known ones (SHA-256 of ``menu.py``,
``nav.py``, the ``dashboard_navigation`` tag and the block's text as the template engine
finds it: a site's own ``layout.html`` block is another text), the menu is built with
Oscar's ``Node`` and the block loads Oscar's ``dashboard_tags`` (not a forked dashboard's
``nav.py`` nor a site's library of that name, which may show an entry by anything of the
user), every entry uses Oscar's default access function and the settings' default access
function is Oscar's.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
from pathlib import Path
from typing import Any

from cmi_django.listing import KeptDrawings
from django.conf import settings
from django.template import Context
from django.template.loader import get_template
from django.urls import get_script_prefix, get_urlconf, resolve, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

__all__ = ["navigation"]

#: The ``dashboard_nav`` block's text in Oscar 4.0 to 4.2's ``layout.html``.
BLOCK_SHA256 = frozenset({"6c5873c4109f1ca18a83178bac6ed2c00e9da1fd33fed8d9bf3b59e002acdcba"})
#: Oscar's ``apps/dashboard/menu.py``, ``apps/dashboard/nav.py`` and the
#: ``dashboard_navigation`` tag's source, joined (Oscar 4.0 to 4.2).
CODE_SHA256 = frozenset({"e23131db498a9b2d8f778066cf3fc8866a8b448c4ffb1fc80c294bc2ca85b09d"})
DEFAULT_ACCESS = "oscar.apps.dashboard.nav.default_access_fn"
LAYOUT = "oscar/dashboard/layout.html"
_BLOCK = re.compile(r"{% block dashboard_nav %}(.*?){% endblock %}", re.DOTALL)

_KEPT = 512
#: Drawings kept, keyed by the outcomes, language and URLs (at most _KEPT, then dropped).
_drawn: KeptDrawings[str] = KeptDrawings(_KEPT)
#: (layout origin, navigation setting, URL conf, default access function) -> (compiled
#: block, each entry's permissions, the menu) or (None, [], the menu) where the guard failed.
_menus: KeptDrawings[tuple[Any, list[Any], Any]] = KeptDrawings(_KEPT)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _code_is_known() -> bool:
    from oscar.apps.dashboard import menu, nav
    from oscar.templatetags import dashboard_tags

    if dashboard_tags.get_nodes is not menu.get_nodes:  # a forked dashboard's menu
        return False
    if menu.Node is not nav.Node:  # a forked dashboard's nav.py: its own is_visible
        return False
    source = "".join(
        (
            Path(inspect.getfile(menu)).read_text(encoding="utf-8"),
            Path(inspect.getfile(nav)).read_text(encoding="utf-8"),
            inspect.getsource(dashboard_tags.dashboard_navigation),
        )
    )
    return _sha256(source) in CODE_SHA256


def _leaves(items: Any) -> list[dict[str, Any]] | None:
    """Every entry with a URL, or None if one has an access function of its own."""
    leaves = []
    for item in items:
        if "access_fn" in item:
            return None
        children = item.get("children", [])
        if children:
            inner = _leaves(children)
            if inner is None:
                return None
            leaves += inner
        elif item.get("url_name") is not None:
            leaves.append(item)
    return leaves


def _menu(items: Any, urlconf: Any) -> tuple[Any, list[Any], Any] | None:
    """The block compiled, and each entry's permissions (None: Oscar's path runs)."""
    template = get_template(LAYOUT)
    access = getattr(settings, "OSCAR_DASHBOARD_DEFAULT_ACCESS_FUNCTION", None)
    key = (getattr(getattr(template, "origin", None), "name", None), id(items), urlconf, access)
    found = _menus.get(key)
    if found is None or found[2] is not items:
        try:
            found = _build(template, items)
        except Exception:  # noqa: BLE001 (Oscar's own path runs, and says what is wrong)
            found = (None, [], items)
        _drawn.clear()
        _menus.keep(key, found)
    return found if found[0] is not None else None


def _build(template: Any, items: Any) -> tuple[Any, list[Any], Any]:
    from oscar.apps.dashboard.nav import _dashboard_url_names_to_config

    refused: tuple[Any, list[Any], Any] = (None, [], items)
    if getattr(settings, "OSCAR_DASHBOARD_DEFAULT_ACCESS_FUNCTION", None) != DEFAULT_ACCESS:
        return refused
    leaves = _leaves(items)
    origin = getattr(template, "origin", None)
    if leaves is None or origin is None or not origin.name:
        return refused
    match = _BLOCK.search(Path(origin.name).read_text(encoding="utf-8"))
    if match is None or _sha256(match.group(1)) not in BLOCK_SHA256:
        return refused
    engine = template.template.engine
    if not _tags_are_oscars(engine):
        return refused
    block = engine.from_string("{% load dashboard_tags %}" + match.group(1))
    permissions = []
    for leaf in leaves:
        # What default_access_fn reads: the permissions of the view the URL resolves to.
        url = reverse(leaf["url_name"], args=leaf.get("url_args"), kwargs=leaf.get("url_kwargs"))
        name = resolve(url).url_name
        permissions.append(_dashboard_url_names_to_config()[name].get_permissions(name))
    return (block, permissions, items)


def _tags_are_oscars(engine: Any) -> bool:
    """True when ``{% load dashboard_tags %}`` loads Oscar's library in ``engine`` (a
    site's app may have a ``templatetags/dashboard_tags.py`` of its own, whose
    ``dashboard_navigation`` may read anything of the user)."""
    from oscar.templatetags import dashboard_tags

    return engine.template_libraries.get("dashboard_tags") is dashboard_tags.register


def navigation(user: Any) -> SafeString | None:
    """The ``dashboard_nav`` block as Oscar draws it for ``user``, or None (see above)."""
    from oscar.views.decorators import check_permissions

    if not _code_is_known():
        return None
    items = settings.OSCAR_DASHBOARD_NAVIGATION
    urlconf = get_urlconf()
    menu = _menu(items, urlconf)
    if menu is None:
        return None
    block, permissions, _ = menu
    outcomes = tuple(bool(check_permissions(user, perms)) for perms in permissions)
    key = (outcomes, get_language(), urlconf, get_script_prefix(), id(block))
    drawn = _drawn.get(key)
    if drawn is None:
        drawn = _drawn.keep(
            key, block.render(Context({"user": user}, autoescape=block.engine.autoescape))
        )
    return mark_safe(drawn)  # noqa: S308 (drawn by Oscar's block, as Oscar draws it)
