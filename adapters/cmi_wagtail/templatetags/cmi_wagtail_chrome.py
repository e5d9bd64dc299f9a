"""Wagtail's admin chrome for the payments list, its pure parts drawn once (issue 16, goal 4).

``{% load cmi_wagtail_chrome %}`` in ``cmi_wagtail/admin/payment_index.html``, the list's
copy of the ``furniture`` block of ``wagtailadmin/base.html`` (the sidebar, the keyboard
dialog, the messages; used only while the page's block is Wagtail's and equal to the
copy, see :func:`chrome_in_use`). Two tags stand for Wagtail's, and write what Wagtail's
write:

- ``{% cmi_sidebar_props %}`` (``{% sidebar_props %}``): the sidebar's menu is built for
  each request as Wagtail builds it (every menu item's ``is_shown`` for this user, the
  ``construct_main_menu`` hooks, the search area, the account menu), then turned into the
  JSON the sidebar's script reads. That second step (telepath's packing, half of the
  sidebar's cost) is a function of the menu's values alone: the JSON is kept, keyed by
  those values (every label, URL, icon, attribute, the user's name and avatar, and which
  values are the same object, which telepath writes as references). A user granted a
  permission gets a different menu, so a different key; two users share a JSON only when
  their menus are the same in every value it holds.
- ``{% cmi_keyboard_shortcuts_dialog %}`` (``{% keyboard_shortcuts_dialog %}``): the
  dialog is a function of the language, the URLs and what Wagtail's function reads of
  the request (the user's setting, whether comments are on, the keyboard's key names
  from the browser's User-Agent); it is drawn once for each.

Whatever cannot be keyed so (a menu item whose packing is not telepath's plain
constructor-and-arguments, a value of a type not listed here) is drawn by Wagtail's own
code, uncached. The kept drawings are few (a menu per permission set, user and language)
and bounded (:data:`MAX_KEPT` in each of the module's stores, :class:`KeptDrawings`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from functools import cache
from typing import Any

from cmi_django.listing import KeptDrawings, clear_all
from django import template
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf
from django.utils.autoreload import file_changed
from django.utils.functional import Promise
from django.utils.html import _json_script_escapes  # type: ignore[attr-defined]
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from telepath import (  # type: ignore[import-untyped]  # telepath ships no types
    Adapter,
    DictAdapter,
    StringAdapter,
)
from wagtail.admin.templatetags import wagtailadmin_tags

register = template.Library()

__all__ = [
    "CHROME_TEMPLATE",
    "chrome_in_use",
    "cmi_filters_drawer",
    "cmi_inner_block",
    "cmi_keyboard_shortcuts_dialog",
    "cmi_sidebar_props",
    "cmi_wagtail_config",
    "kept_dropdown",
    "prime_explorable_root",
    "sidebar_key",
    "slim_header_in_use",
    "slim_header_name",
    "wagtail_furniture_as_copied",
    "wagtail_js_as_copied",
    "wagtail_search_form_as_copied",
    "wagtail_slim_header_as_copied",
]

#: Drawings kept per process in each store, at most (then all are dropped and drawn again).
MAX_KEPT = 512
#: The filters drawer is kept only up to this many characters (its key holds its widgets'
#: HTML too): a "Page" filter with thousands of choices is drawn each time instead, so the
#: kept drawers stay within about 512 x 2 x 32 KB whatever staff submit.
MAX_KEPT_DRAWER = 32 * 1024
#: The sidebar's JSON, the keyboard dialog and the buttons' dropdowns.
_KEPT: KeptDrawings[SafeString] = KeptDrawings(MAX_KEPT)
#: The filters' drawers (:func:`cmi_filters_drawer`), each at most MAX_KEPT_DRAWER long.
_DRAWERS: KeptDrawings[SafeString] = KeptDrawings(MAX_KEPT, largest=MAX_KEPT_DRAWER)

#: ``wagtailadmin_tags.sidebar_props`` as this module rebuilds it (SHA-256s of its source):
#: another body (a Wagtail release that changed the sidebar) is called as it is, uncached.
SIDEBAR_PROPS_SHA256 = frozenset(
    {"5683bedfbddf64bc2790a4e67393a2b595c09d0b898a26a5ef84e9f742ffec45"}  # Wagtail 8.0
)
KEYBOARD_TEMPLATE = "wagtailadmin/shared/keyboard_shortcuts_dialog.html"


class Unkeyable(Exception):  # noqa: N818 - a signal, not an error anyone sees
    """A value the sidebar's key cannot hold exactly: the sidebar is drawn uncached."""


def sidebar_key(value: Any) -> tuple[Any, ...]:
    """What telepath writes for ``value``, as a hashable key: equal keys, equal JSON.

    Walks ``value`` as :class:`telepath.ValueContext` does: an object registered with an
    adapter of telepath's plain kind (a constructor name and :meth:`js_args`) as its
    constructor and arguments, dicts by their items in order, strings, numbers, booleans
    and None with their types (``1``, ``1.0`` and ``True`` are written differently), lazy
    text as its translation, other iterables as lists; a value met again (the same
    object: telepath writes a reference to it) as its first position. Raises
    :class:`Unkeyable` for anything else.
    """
    from wagtail.admin.telepath import registry

    seen: dict[int, int] = {}
    alive: list[Any] = []  # telepath keeps them too: an id is not reused mid-walk
    adapters: dict[type, Any] = {}  # each type's adapter, found once a walk

    def walk(item: Any) -> Any:
        ident = id(item)
        if ident in seen:
            return ("ref", seen[ident])
        seen[ident] = len(seen)
        alive.append(item)
        kind = type(item)
        try:
            adapter = adapters[kind]
        except KeyError:
            adapter = adapters[kind] = registry.find_adapter(kind)
        if adapter is None:
            if isinstance(item, Promise):
                return ("str", str(item))
            if isinstance(item, (list, tuple)):
                return ("list", tuple(walk(part) for part in item))
            raise Unkeyable(kind)
        if isinstance(adapter, StringAdapter):
            return ("str", str.__str__(item))
        if isinstance(adapter, DictAdapter):
            return ("dict", tuple((key, walk(part)) for key, part in item.items()))
        if kind in (type(None), bool, int, float):
            return (kind.__name__, item)
        adapter_class = type(adapter)
        if (
            isinstance(adapter, Adapter)
            and adapter_class.pack is Adapter.pack
            and adapter_class.build_node is Adapter.build_node
        ):
            return (
                "obj",
                adapter.js_constructor,
                tuple(walk(arg) for arg in adapter.js_args(item)),
            )
        raise Unkeyable(kind)

    return ("sidebar", walk(value))


@cache
def _sidebar_rebuilt() -> bool:
    """Whether Wagtail's ``sidebar_props`` is the one :func:`cmi_sidebar_props` rebuilds."""
    try:
        source = inspect.getsource(wagtailadmin_tags.sidebar_props)
    except (OSError, TypeError):  # no source: trust nothing
        return False
    return hashlib.sha256(source.encode()).hexdigest() in SIDEBAR_PROPS_SHA256


@register.simple_tag(takes_context=True)
def cmi_sidebar_props(context: Any) -> SafeString:
    """``{% sidebar_props %}``'s script element: the menu built for this request, its JSON
    kept by the menu's values (see the module's docstring)."""
    if not _sidebar_rebuilt():
        return SafeString(wagtailadmin_tags.sidebar_props(context))
    # wagtailadmin_tags.sidebar_props's body (SIDEBAR_PROPS_SHA256), with its module's names
    tags = wagtailadmin_tags
    request = context["request"]
    search_areas = tags.admin_search_areas.search_items_for_request(request)
    search_area = search_areas[0] if search_areas else None
    account_menu = [
        tags.sidebar.LinkMenuItem(
            "account", tags._("Account"), tags.reverse("wagtailadmin_account"), icon_name="user"
        ),
        tags.sidebar.ActionMenuItem(
            "logout", tags._("Log out"), tags.reverse("wagtailadmin_logout"), icon_name="logout"
        ),
    ]
    modules = [
        tags.sidebar.WagtailBrandingModule(),
        tags.sidebar.SearchModule(search_area) if search_area else None,
        tags.sidebar.MainMenuModule(
            tags.admin_menu.render_component(request), account_menu, request.user
        ),
    ]
    modules = [module for module in modules if module is not None]
    try:
        key = sidebar_key(modules)
    except Unkeyable:
        key = None
    kept = None if key is None else _KEPT.get(key)
    if kept is not None:
        return kept
    drawn = tags.json_script(
        {"modules": tags.JSContext().pack(modules)}, element_id="wagtail-sidebar-props"
    )
    return drawn if key is None else _KEPT.keep(key, drawn)


#: Wagtail's ``PagePermissionPolicy.explorable_root_instance``,
#: ``instances_with_direct_explore_permission`` and ``first_common_ancestor_of`` as
#: :func:`prime_explorable_root` reads them (SHA-256 of their three sources, joined).
EXPLORABLE_ROOT_SHA256 = frozenset(
    {"3fc05c069b9a1cb23b484f3f83ec88f7edf519de0cd57e4bebd50e4fdd4b03db"}  # Wagtail 8.0
)


def _explorable_root_source(policy_class: Any, manager_class: Any) -> str:
    """The three functions' sources that decide a superuser's explorable root."""
    return "".join(
        inspect.getsource(function)
        for function in (
            policy_class.explorable_root_instance,
            policy_class.instances_with_direct_explore_permission,
            manager_class.first_common_ancestor_of,
        )
    )


@cache
def _explorable_root_read(policy_class: Any, manager_class: Any) -> bool:
    """Whether Wagtail's functions are those :func:`prime_explorable_root` reads."""
    try:
        source = _explorable_root_source(policy_class, manager_class)
    except (OSError, TypeError, AttributeError):
        return False
    return hashlib.sha256(source.encode()).hexdigest() in EXPLORABLE_ROOT_SHA256


def prime_explorable_root(user: Any) -> bool:
    """Find a superuser's explorable root page (the explorer's start page in the sidebar)
    in one statement, and leave it where Wagtail keeps it for the request.

    Wagtail's ``explorable_root_instance`` (kept on the user for the request) finds it in
    two statements through the ORM for a superuser: the pages of depth 1, then the page
    whose path is their common prefix. With one root that is the root itself (two or more
    roots, or none, have no common ancestor: None). This reads the depth-1 pages once, by
    a statement written from the model's metadata, and builds them as the ORM does
    (``Model.from_db``). Only for an active superuser, only while Wagtail's three
    functions are the ones read here (:data:`EXPLORABLE_ROOT_SHA256`) and the pages'
    manager is Wagtail's own, and never over a value Wagtail already found; else Wagtail
    finds it as it does. Returns whether it
    primed.
    """
    if not (getattr(user, "is_active", False) and getattr(user, "is_superuser", False)):
        return False
    try:
        from wagtail.models import Page, PageManager
        from wagtail.permissions import policy_registry
    except ImportError:  # Wagtail 7.0: no registry; its own code runs
        return False
    policy = policy_registry.get_by_type(Page)
    name = getattr(policy, "_explorable_root_instance_cache_name", None)
    if not isinstance(name, str) or hasattr(user, name):
        return False
    model = policy.model.base_page_model
    if type(model.objects) is not PageManager:  # a site's own manager may filter pages
        return False
    classes: tuple[Any, Any] = (type(policy), type(model.objects))
    if not _explorable_root_read(*classes):
        return False
    from django.db import connections, router

    alias = router.db_for_read(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(quote(field.column) for field in fields)
    depth = quote(model._meta.get_field("depth").column)
    sql = f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {depth} = %s LIMIT 2"  # noqa: S608 - names quoted from the model's metadata
    with connection.cursor() as cursor:
        cursor.execute(sql, [1])
        rows = cursor.fetchall()
    root = None
    if len(rows) == 1:  # the values converted as the ORM converts each column's
        values = list(rows[0])
        for index, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            for converter in (
                *connection.ops.get_db_converters(column),
                *column.get_db_converters(connection),
            ):
                values[index] = converter(values[index], column, connection)
        root = model.from_db(alias, [field.attname for field in fields], values)
    setattr(user, name, root)
    return True


def _frozen(value: Any) -> Any:
    """The keyboard dialog's values as a key: lazy text translated, containers as tuples."""
    if isinstance(value, Promise):
        return ("str", str(value))
    if isinstance(value, dict):
        return ("dict", tuple((_frozen(key), _frozen(part)) for key, part in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_frozen(part) for part in value))
    if value is None or isinstance(value, (str, int, float)):
        return (type(value).__name__, value)
    raise Unkeyable(type(value))


#: ``wagtailadmin_tags.keyboard_shortcuts_dialog`` as :func:`_keyboard_inputs` reads its
#: inputs (SHA-256s of its source); another is asked for its values on every page.
KEYBOARD_DIALOG_SHA256 = frozenset(
    {"35e659a1f26d7b782e10759f20c94115e5eff2abe24cac8e57a6b809ceed1e96"}  # Wagtail 8.0
)


@cache
def _keyboard_read() -> bool:
    """Whether Wagtail's ``keyboard_shortcuts_dialog`` is the one :func:`_keyboard_inputs`
    reads the inputs of."""
    try:
        source = inspect.getsource(wagtailadmin_tags.keyboard_shortcuts_dialog)
    except (OSError, TypeError, AttributeError):
        return False
    return hashlib.sha256(source.encode()).hexdigest() in KEYBOARD_DIALOG_SHA256


def _keyboard_inputs(context: Any) -> tuple[Any, ...]:
    """What Wagtail's ``keyboard_shortcuts_dialog`` (:data:`KEYBOARD_DIALOG_SHA256`) reads
    of the request, read as it reads it: the user's keyboard shortcuts setting, whether
    comments are on, a Mac's keyboard (the User-Agent) and the key names Wagtail gives it.
    Its labels are the active language's (in the key beside these)."""
    request = context.get("request")
    enabled = True
    if request and getattr(request, "user", None):
        profile = getattr(request.user, "wagtail_userprofile", None)
        if profile is not None:
            enabled = bool(getattr(profile, "keyboard_shortcuts", True))
    agent = request.headers.get("User-Agent", "") if request else ""
    mac = bool(re.search(r"Mac|iPod|iPhone|iPad", agent))
    keys: tuple[Any, ...] = ()
    if request:
        labels = wagtailadmin_tags.get_keyboard_key_labels_from_request(request)
        keys = tuple(sorted(vars(labels).items()))
    return (enabled, bool(wagtailadmin_tags.get_comments_enabled()), mac, keys)


@register.simple_tag(takes_context=True)
def cmi_keyboard_shortcuts_dialog(context: Any) -> SafeString:
    """``{% keyboard_shortcuts_dialog %}``: its template drawn once for each set of values
    (in each language, URL configuration and escaping). The values are known by what
    Wagtail's function reads of the request (:func:`_keyboard_inputs`, while that
    function is the one read: :data:`KEYBOARD_DIALOG_SHA256`), else by the values
    themselves, asked of it on every page."""
    inputs: Any = _keyboard_inputs(context) if _keyboard_read() else None
    values = None if inputs is not None else wagtailadmin_tags.keyboard_shortcuts_dialog(context)
    key = (
        "keyboard",
        get_language(),
        get_script_prefix(),
        get_urlconf(),
        context.autoescape,
        context.use_l10n,
        context.use_tz,
        ("inputs", inputs) if inputs is not None else _frozen(values),
    )
    kept = _KEPT.get(key)
    if kept is not None:
        return kept
    if values is None:
        values = wagtailadmin_tags.keyboard_shortcuts_dialog(context)
    # What Django's inclusion tag does: the template, in a new context of the values.
    dialog = context.template.engine.get_template(KEYBOARD_TEMPLATE)
    inner = context.new(values)
    csrf_token = context.get("csrf_token")
    if csrf_token is not None:
        inner["csrf_token"] = csrf_token
    drawn = SafeString(dialog.render(inner))
    if csrf_token is not None and "csrf_token" in (dialog.source or ""):
        return drawn  # a per-user token: never kept (the dialog has no form today)
    return _KEPT.keep(key, drawn)


#: ``wagtailadmin_tags.wagtail_config`` and ``get_js_translation_strings`` as
#: :func:`cmi_wagtail_config` rebuilds them (SHA-256 of their two sources, joined):
#: another is called as it is, on every page.
WAGTAIL_CONFIG_SHA256 = frozenset(
    {"9c0f8613c4cd39e0e7d78150ea0d4a33b0f017bd2d274a26b57fa741025e9ca6"}  # Wagtail 8.0
)
_CONFIG_KEPT: KeptDrawings[tuple[str, str, str]] = KeptDrawings(MAX_KEPT)


@cache
def _config_rebuilt() -> bool:
    """Whether Wagtail's ``wagtail_config`` (and the strings it sends) are the ones
    :func:`cmi_wagtail_config` rebuilds."""
    try:
        source = inspect.getsource(wagtailadmin_tags.wagtail_config) + inspect.getsource(
            wagtailadmin_tags.get_js_translation_strings
        )
    except (OSError, TypeError, AttributeError):
        return False
    return hashlib.sha256(source.encode()).hexdigest() in WAGTAIL_CONFIG_SHA256


def _json(value: Any) -> str:
    """``value`` as Django's ``json_script`` writes it, before its escapes."""
    from django.core.serializers.json import DjangoJSONEncoder

    return json.dumps(value, cls=DjangoJSONEncoder)


@register.simple_tag(takes_context=True)
def cmi_wagtail_config(context: Any) -> SafeString:
    """``{% wagtail_config as config %}{{ config|json_script:"wagtail-config" }}``: the
    admin's configuration script, its parts that are a function of the language and the
    URL configuration alone (the admin API's and admin's URLs, the translated strings
    the scripts show: most of its cost) written as JSON once for each; the rest (the
    request's CSRF token, the header's name, whether i18n is on, the locales, read from
    the database on every page as Wagtail reads them, the content locale, the user's
    keyboard setting) read for each page. The JSON is the one ``json.dumps`` writes for
    Wagtail's dict, key by key in its order, with ``json_script``'s escapes. Only while
    Wagtail's functions are the ones rebuilt (:data:`WAGTAIL_CONFIG_SHA256`)."""
    tags = wagtailadmin_tags
    if not _config_rebuilt():
        return SafeString(tags.json_script(tags.wagtail_config(context), "wagtail-config"))
    # wagtailadmin_tags.wagtail_config's body (WAGTAIL_CONFIG_SHA256), with its module's names
    request = context["request"]
    key = ("config", get_language(), get_script_prefix(), get_urlconf())
    kept = _CONFIG_KEPT.get(key)
    if kept is None:
        api = {
            "PAGES": tags.reverse("wagtailadmin_api:pages:listing"),
            "DOCUMENTS": tags.reverse("wagtailadmin_api:documents:listing"),
            "IMAGES": tags.reverse("wagtailadmin_api:images:listing"),
            "EXTRA_CHILDREN_PARAMETERS": "",
        }
        urls = {
            "DISMISSIBLES": tags.reverse("wagtailadmin_dismissibles"),
            "PAGES": tags.reverse("wagtailadmin_explore_root"),
            "BLOCK_PREVIEW": tags.reverse("wagtailadmin_block_preview"),
        }
        kept = _CONFIG_KEPT.keep(
            key, (_json(api), _json(urls), _json(tags.get_js_translation_strings()))
        )
    api_json, urls_json, strings_json = kept
    parts = [
        f'"CSRF_TOKEN": {_json(tags.get_token(request))}',
        '"CSRF_HEADER_NAME": '
        + _json(tags.HttpHeaders.parse_header_name(tags.settings.CSRF_HEADER_NAME)),
        f'"ADMIN_API": {api_json}',
        f'"ADMIN_URLS": {urls_json}',
        f'"I18N_ENABLED": {_json(tags.i18n_enabled())}',
        '"LOCALES": '
        + _json(
            [
                {
                    "code": locale.language_code,
                    "display_name": tags.force_str(locale.get_display_name()),
                }
                for locale in tags.Locale.objects.all()
            ]
        ),
        f'"STRINGS": {strings_json}',
    ]
    if locale := context.get("locale"):
        parts.append(f'"ACTIVE_CONTENT_LOCALE": {_json(locale.language_code)}')
    user: Any = getattr(context.get("request"), "user", None)
    enabled = (
        user.wagtail_userprofile.keyboard_shortcuts
        if hasattr(user, "wagtail_userprofile")
        else True
    )
    parts.append(f'"KEYBOARD_SHORTCUTS_ENABLED": {_json(enabled)}')
    written = ("{" + ", ".join(parts) + "}").translate(_json_script_escapes)
    return SafeString(f'<script id="wagtail-config" type="application/json">{written}</script>')


#: The templates a header dropdown of buttons is drawn with, and the code that gives them
#: their values (Wagtail's button module, its ``icon`` tag), as :func:`kept_dropdown`
#: keeps the drawing (SHA-256 of their sources, joined): another draws on every page.
DROPDOWN_TEMPLATES = (
    "wagtailadmin/shared/button_with_dropdown.html",
    "wagtailadmin/shared/dropdown/dropdown.html",
    "wagtailadmin/shared/button.html",
    "wagtailadmin/shared/icon.html",
)
DROPDOWN_SHA256 = frozenset(
    {"fa2bf8fdeb5949e7f8756db4fa67c220deca3acdcbcbe183664fb29f994d727f"}  # Wagtail 8.0
)


def _dropdown_source() -> str:
    """What a header dropdown's drawing is a function of, besides its buttons' values."""
    from django.template.loader import get_template
    from wagtail.admin.widgets import button

    sources = [get_template(name).template.source for name in DROPDOWN_TEMPLATES]  # type: ignore[attr-defined]
    return "".join([*sources, inspect.getsource(button), inspect.getsource(wagtailadmin_tags.icon)])


@cache
def _dropdown_read(engine: Any) -> bool:
    """Whether the dropdown's templates and code are the ones read (per template engine:
    a site's own templates are found through it)."""
    try:
        source = _dropdown_source()
    except (OSError, TypeError, AttributeError, template.TemplateDoesNotExist):
        return False
    return hashlib.sha256(source.encode()).hexdigest() in DROPDOWN_SHA256


def _button_key(button: Any) -> tuple[Any, ...]:
    """A plain button's values (every attribute it holds) as a key; Unkeyable for
    another kind of button, whose drawing may read more."""
    from wagtail.admin.widgets.button import Button

    if type(button) is not Button:
        raise Unkeyable(type(button))
    return ("button", _frozen(dict(sorted(vars(button).items()))))


def kept_dropdown(dropdown: Any) -> Any:
    """Wagtail's header dropdown of buttons (a ``ButtonWithDropdown``: the list's "more"
    menu, the CSV and XLSX downloads) drawn once for its values: the same object, its
    ``render_html`` keeping each drawing by every value the templates read (the
    dropdown's and each button's attributes, the language, the URL configuration).
    Its templates draw from those values alone (no request, no per-user value: their
    sources and Wagtail's button code are checked, :data:`DROPDOWN_SHA256`)."""
    from wagtail.admin.widgets.button import ButtonWithDropdown

    if type(dropdown) is not ButtonWithDropdown:
        return dropdown
    draw = dropdown.render_html

    def render_html(parent_context: Any = None) -> SafeString:
        from django.template import engines

        if not _dropdown_read(engines["django"].engine):  # type: ignore[attr-defined]
            return SafeString(draw(parent_context))
        try:
            values = {k: v for k, v in vars(dropdown).items() if k != "render_html"}
            buttons = tuple(_button_key(b) for b in values.pop("dropdown_buttons"))
            key = (
                "dropdown",
                get_language(),
                get_script_prefix(),
                get_urlconf(),
                type(dropdown).__name__,
                _frozen(dict(sorted(values.items()))),
                buttons,
            )
        except Unkeyable:
            return SafeString(draw(parent_context))
        kept = _KEPT.get(key)
        if kept is None:
            kept = _KEPT.keep(key, SafeString(draw(parent_context)))
        return kept

    dropdown.render_html = render_html
    return dropdown


#: The list's template: Wagtail's index page, the "furniture" block its copy (see below).
CHROME_TEMPLATE = "cmi_wagtail/admin/payment_index.html"
#: The page :data:`CHROME_TEMPLATE` extends, and where Wagtail defines the block it copies.
WAGTAIL_INDEX = "wagtailadmin/generic/index.html"
WAGTAIL_BASE = "wagtailadmin/base.html"
_FURNITURE = "{% block furniture %}"
_SUBSTITUTES = (
    ("{% sidebar_props %}", "{% cmi_sidebar_props %}"),
    ("{% keyboard_shortcuts_dialog %}", "{% cmi_keyboard_shortcuts_dialog %}"),
)


def _furniture(source: str) -> str | None:
    """A template's ``furniture`` block as written (to the file's last ``endblock``: the
    block ends Wagtail's base.html); None if it has none or more than one."""
    if source.count(_FURNITURE) != 1:
        return None
    start = source.index(_FURNITURE)
    end = source.rindex("{% endblock %}") + len("{% endblock %}")
    return source[start:end] if end > start else None


def wagtail_furniture_as_copied(source: str) -> str | None:
    """Wagtail's ``furniture`` block as :data:`CHROME_TEMPLATE` copies it: the two tags of
    this module for Wagtail's, each empty inner block (``branding_logo``, ``content``)
    as ``{% cmi_inner_block name %}`` (a block defined in the copy would hide the
    definitions of the templates that fill it)."""
    block = _furniture(source)
    if block is None:
        return None
    for theirs, ours in _SUBSTITUTES:
        if block.count(theirs) != 1:
            return None
        block = block.replace(theirs, ours)
    return re.sub(
        r"\{% block (\w+) %\}\{% endblock %\}",
        r"{% cmi_inner_block \1 %}",
        block,
    )


def _chain(engine: Any) -> list[tuple[Any, Any]] | None:
    """The templates (and their origins) the page of :data:`WAGTAIL_INDEX` is drawn from,
    up the chain of its ``extends``, a site's own templates included, most derived
    first; None if a parent is chosen at render time (not one to vouch for)."""
    from django.template.base import Origin
    from django.template.loader_tags import ExtendsNode

    name: str | None = WAGTAIL_INDEX
    history: list[Origin] = []
    chain = []
    while name is not None:
        found, origin = engine.find_template(name, skip=history)
        history.append(origin)
        chain.append((found, origin))
        extends = found.nodelist.get_nodes_by_type(ExtendsNode)
        name = extends[0].parent_name.var if extends else None
        if name is not None and not isinstance(name, str):
            return None
    return chain


def _defining(chain: list[tuple[Any, Any]], block: str) -> tuple[Any, Any] | None:
    """The template of ``chain`` (and its origin) whose ``block`` the page draws: the
    most derived one that defines it."""
    from django.template.loader_tags import BlockNode

    for found, origin in chain:
        if any(b.name == block for b in found.nodelist.get_nodes_by_type(BlockNode)):
            return found, origin
    return None


def _wagtails(origin: Any, template_name: str) -> bool:
    """Whether ``origin`` is ``template_name`` as Wagtail's admin app ships it."""
    path = str(origin.name).replace("\\", "/")
    return origin.template_name == template_name and "/wagtail/admin/" in path


@cache
def chrome_in_use(engine: Any) -> bool:
    """Whether the list may draw its page with :data:`CHROME_TEMPLATE`: the ``furniture``
    block the page would have (the most derived one up the chain of
    :data:`WAGTAIL_INDEX`'s ``extends``, a site's own templates included) is
    Wagtail's own, in ``wagtailadmin/base.html``, the one copied; the ``js`` block is
    Wagtail's own, in ``wagtailadmin/admin_base.html``, the one copied
    (:func:`wagtail_js_as_copied`); the ``slim_header`` block is Wagtail's own, in
    ``wagtailadmin/generic/base.html``, the one copied (:func:`wagtail_slim_header_as_copied`);
    and Wagtail's ``sidebar_props`` is the one
    :func:`cmi_sidebar_props` rebuilds. Any other (another Wagtail release, a site that
    overrides either block) keeps Wagtail's page as it is.

    Read once per process and template engine (templates are cached as they are loaded).
    """
    if not _sidebar_rebuilt() or not hasattr(wagtailadmin_tags, "keyboard_shortcuts_dialog"):
        return False
    try:
        source = engine.get_template(CHROME_TEMPLATE).source
        chain = _chain(engine)
        if chain is None:
            return False
        # each copied block: defined by Wagtail's own template, and copied as it is there
        for name, wagtails, as_copied in (
            ("furniture", WAGTAIL_BASE, wagtail_furniture_as_copied),
            ("js", WAGTAIL_ADMIN_BASE, wagtail_js_as_copied),
            ("slim_header", WAGTAIL_GENERIC_BASE, wagtail_slim_header_as_copied),
        ):
            found = _defining(chain, name)
            if found is None or not _wagtails(found[1], wagtails):
                return False
            copied = as_copied(found[0].source)
            if copied is None or _block(source, name) != copied:
                return False
        # Wagtail's block leaves its config in the context of the ``extra_js`` blocks
        # drawn inside it; the copy does not: none of them may read it.
        return not any(
            re.search(r"\bconfig\b", _block(found.source, "extra_js") or "")
            for found, _origin in [*chain, (engine.get_template(CHROME_TEMPLATE), None)]
        )
    except template.TemplateDoesNotExist:
        return False


#: Where Wagtail defines the ``js`` block :data:`CHROME_TEMPLATE` copies.
WAGTAIL_ADMIN_BASE = "wagtailadmin/admin_base.html"
_CONFIG_SCRIPT = re.compile(
    r'\{% wagtail_config as config %\}(\s*)\{\{ config\|json_script:"wagtail-config" \}\}'
)
_BLOCK_TAG = re.compile(r"\{% (?:block \w+|endblock(?: \w+)?) %\}")


def _block(source: str, name: str) -> str | None:
    """The block ``name`` of a template's source as written, its inner blocks included;
    None if the source has none or more than one."""
    opening = "{% block " + name + " %}"
    if source.count(opening) != 1:
        return None
    start = source.index(opening)
    depth = 0
    for tag in _BLOCK_TAG.finditer(source, start):
        depth += 1 if tag.group().startswith("{% block ") else -1
        if depth == 0:
            return source[start : tag.end()]
    return None


def wagtail_js_as_copied(source: str) -> str | None:
    """Wagtail's ``js`` block (``wagtailadmin/admin_base.html``) as :data:`CHROME_TEMPLATE`
    copies it: ``{% wagtail_config as config %}`` and its ``json_script`` as
    ``{# wagtail_config #}`` and ``{% cmi_wagtail_config %}`` (the whitespace between them
    kept between these), each empty
    inner block (``extra_js``) as ``{% cmi_inner_block name %}``. None if the block is
    not there, or its script is not written as copied."""
    block = _block(source, "js")
    if block is None or len(_CONFIG_SCRIPT.findall(block)) != 1:
        return None
    block = _CONFIG_SCRIPT.sub(r"{# wagtail_config #}\1{% cmi_wagtail_config %}", block)
    if re.search(r"\bconfig\b", block.replace("cmi_wagtail_config", "")):
        return None  # the block reads the config's value elsewhere: not ours to leave out
    return re.sub(
        r"\{% block (\w+) %\}\{% endblock %\}",
        r"{% cmi_inner_block \1 %}",
        block,
    )


class _InnerBlockNode(template.Node):
    """An inner block of the copied block drawn as Wagtail's template draws it: the most
    derived template's definition of it (see :func:`cmi_inner_block`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def render(self, context: Any) -> str:
        from django.template.loader_tags import BlockNode

        # The empty block of Wagtail's base.html, rendered where it stands: it draws the
        # most derived template's definition (BlockNode.render), with one context layer.
        return BlockNode(self.name, template.NodeList()).render(context)


@register.tag("cmi_inner_block")
def cmi_inner_block(parser: Any, token: Any) -> _InnerBlockNode:
    """``{% cmi_inner_block name %}``: where Wagtail's copied block has an empty
    ``{% block name %}{% endblock %}``, the same drawing without defining the block in
    the copy (a block defined there would hide the definitions of the templates between
    the copy and Wagtail's base.html; redefined as ``{{ block.super }}`` they drew the same
    page 2.5 to 3 ms of CPU slower, measured, the cause not pinned down)."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError("cmi_inner_block takes one block name")
    return _InnerBlockNode(bits[1])


#: Where Wagtail defines the header's template and its filters' drawer, and this app's
#: header (Wagtail's, its ``search_form`` block copied with :func:`cmi_filters_drawer`).
WAGTAIL_SLIM_HEADER = "wagtailadmin/shared/headers/slim_header.html"
WAGTAIL_GENERIC_BASE = "wagtailadmin/generic/base.html"
FILTERS_TEMPLATE = "wagtailadmin/shared/headers/_filters.html"
SLIM_HEADER_TEMPLATE = "cmi_wagtail/admin/slim_header.html"
_FILTERS_INCLUDE = '{% include "' + FILTERS_TEMPLATE + '" with filters=filters only %}'
_SLIM_HEADER_INCLUDE = '{% include "' + WAGTAIL_SLIM_HEADER + '" with '


def wagtail_slim_header_as_copied(source: str) -> str | None:
    """Wagtail's ``slim_header`` block (``wagtailadmin/generic/base.html``) as
    :data:`CHROME_TEMPLATE` copies it: the header's template named by the context's
    ``cmi_slim_header`` (:func:`slim_header_name`). None if the block is not there, or
    does not include the header as copied."""
    block = _block(source, "slim_header")
    if block is None or block.count(_SLIM_HEADER_INCLUDE) != 1:
        return None
    return block.replace(_SLIM_HEADER_INCLUDE, "{% include cmi_slim_header with ")


def wagtail_search_form_as_copied(source: str) -> str | None:
    """Wagtail's header's ``search_form`` block (``slim_header.html``) as
    :data:`SLIM_HEADER_TEMPLATE` copies it: the filters' drawer as
    ``{% cmi_filters_drawer filters %}``. None if the block is not there, or does not
    include the drawer as copied."""
    block = _block(source, "search_form")
    if block is None or block.count(_FILTERS_INCLUDE) != 1:
        return None
    return block.replace(_FILTERS_INCLUDE, "{% cmi_filters_drawer filters %}")


@cache
def slim_header_in_use(engine: Any) -> bool:
    """Whether the list's header may be :data:`SLIM_HEADER_TEMPLATE`: the header's template
    as the engine finds it is Wagtail's own (a site's own is drawn as it is), its
    ``search_form`` block the one copied, and the template the copy extends is that one."""
    from django.template.loader_tags import ExtendsNode

    try:
        theirs = engine.get_template(WAGTAIL_SLIM_HEADER)
        ours = engine.get_template(SLIM_HEADER_TEMPLATE)
    except template.TemplateDoesNotExist:
        return False
    if not _wagtails(theirs.origin, WAGTAIL_SLIM_HEADER):
        return False
    extends = ours.nodelist.get_nodes_by_type(ExtendsNode)
    if len(extends) != 1 or extends[0].parent_name.var != WAGTAIL_SLIM_HEADER:
        return False
    copied = wagtail_search_form_as_copied(theirs.source)
    return copied is not None and _block(ours.source, "search_form") == copied


def slim_header_name(engine: Any) -> str:
    """The header's template :data:`CHROME_TEMPLATE`'s ``slim_header`` block includes
    (its ``cmi_slim_header``): this app's while :func:`slim_header_in_use`, else Wagtail's."""
    return SLIM_HEADER_TEMPLATE if slim_header_in_use(engine) else WAGTAIL_SLIM_HEADER


#: The templates the filters' drawer is drawn with (as the engine finds them: a site's own
#: is another source) and the code that gives them their values (Wagtail's
#: ``formattedfield``, ``icon``, ``dropdown`` and ``fragment`` tags), as
#: :func:`cmi_filters_drawer` keeps the drawing (SHA-256 of their sources, joined):
#: another draws the drawer on every page.
FILTERS_TEMPLATES = (
    FILTERS_TEMPLATE,
    "wagtailadmin/shared/dropdown/dropdown.html",
    "wagtailadmin/shared/formatted_field.html",
    "wagtailadmin/shared/attrs.html",
    "wagtailadmin/shared/icon.html",
)
FILTERS_SHA256 = frozenset(
    {"43bce9fa8fe8083810189185f28af7e8510ac683cd512152017245776b4cba77"}  # Wagtail 8.0
)
_FILTERS_TAGS = ("formattedfield", "icon", "dropdown", "fragment", "classnames")


def _filters_source(engine: Any) -> str:
    """What the drawer's drawing is a function of, besides the values its key holds."""
    tags = wagtailadmin_tags
    sources = [engine.get_template(name).source for name in FILTERS_TEMPLATES]
    code = [
        inspect.getsource(tags.formattedfield),
        inspect.getsource(tags.icon),
        inspect.getsource(tags.BlockInclusionNode),
        inspect.getsource(tags.DropdownNode),
        inspect.getsource(tags.FragmentNode),
        inspect.getsource(tags.fragment),
        inspect.getsource(tags.classnames),
    ]
    return "".join([*sources, *code])


@cache
def _filters_read(engine: Any) -> bool:
    """Whether the drawer's templates and code are the ones read (per template engine),
    with Wagtail's tag library the one the engine loads as ``wagtailadmin_tags``."""
    library = engine.template_libraries.get("wagtailadmin_tags")
    if library is not wagtailadmin_tags.register:
        return False
    if any(library.tags.get(name) is None for name in _FILTERS_TAGS if name != "icon"):
        return False
    try:
        source = _filters_source(engine)
    except (OSError, TypeError, AttributeError, template.TemplateDoesNotExist):
        return False
    return hashlib.sha256(source.encode()).hexdigest() in FILTERS_SHA256


def _filters_key(filters: Any) -> tuple[Any, ...]:
    """Every value the drawer's templates read: for each of the form's fields its id and
    label (``_filters.html``) and what Wagtail's ``formattedfield`` gives
    ``formatted_field.html`` (the widget as drawn with its bound values and choices, the
    errors, the label, the help text, the classes). Unkeyable for a value of another type."""
    return tuple(
        (
            _frozen(field.auto_id),
            _frozen(field.label),
            _frozen(wagtailadmin_tags.formattedfield(field=field)),
        )
        for field in filters.form
    )


@register.simple_tag(takes_context=True)
def cmi_filters_drawer(context: Any, filters: Any) -> SafeString:
    """``{% cmi_filters_drawer filters %}``: what ``{% include
    "wagtailadmin/shared/headers/_filters.html" with filters=filters only %}`` draws (the
    list's filters in the header's drawer), kept by every value the templates read
    (:func:`_filters_key`, the language, the escaping) while the templates and Wagtail's
    tags are the ones read (:data:`FILTERS_SHA256`); drawn every time otherwise."""
    engine = context.template.engine
    drawer = engine.get_template(FILTERS_TEMPLATE)

    def draw() -> SafeString:
        return SafeString(drawer.render(context.new({"filters": filters})))

    if not _filters_read(engine):
        return draw()
    try:
        key = ("filters", id(engine), get_language(), context.autoescape, _filters_key(filters))
    except Unkeyable:
        return draw()
    kept = _DRAWERS.get(key)
    if kept is None:
        kept = _DRAWERS.keep(key, draw())  # not kept past MAX_KEPT_DRAWER
    return kept


@receiver(file_changed, dispatch_uid="cmi_wagtail_chrome_templates")
def forget_templates(sender: Any, file_path: Any, **kwargs: Any) -> None:
    """A template changed while the development server runs (Django's autoreloader then
    resets the template loaders instead of restarting): the guards read from the
    templates (per engine) and the kept drawings are forgotten, so that a site's template
    written meanwhile is checked, and drawn, on the next page."""
    if getattr(file_path, "suffix", "") == ".py":
        return  # the server restarts
    for guard in (_dropdown_read, chrome_in_use, slim_header_in_use, _filters_read):
        guard.cache_clear()
    clear_all()
