"""The Django admin's payments list, its rows drawn in Python (issue 16, goal 4).

``{% load cmi_admin_list %}`` in ``admin/cmi_django/payment/change_list.html``, whose
``result_list`` block is ``{% cmi_result_list cl %}``. The tag renders the block it stands
for (Django's, from ``admin/change_list.html``) node by node, as ``{{ block.super }}``
would, except Django's ``{% result_list cl %}``: there the table's template
(``change_list_results.html``, chosen as Django chooses it) is rendered with Django's
headers and with each row already drawn, one string a row, the cells written here as
Django's ``items_for_result`` writes them (a cell's value still formatted by Django's
``display_for_field`` and ``display_for_value``, in the staff member's language). The
change link is reversed once a page, not once a row: the page's link with a placeholder
key is cut in two around it, and checked against Django's link for the page's first row.

By profile, Django's ``items_for_result`` (7 cells a row, each a field lookup, a label, a
``format_html``, a ``reverse`` and the preserved filters' URL parsing for the link) was
half of the list's render. Django's own code runs instead, unchanged, unless every one of
these holds (:func:`rows_in_use`, :func:`block_in_use`):

- Django's code read here is a version known (SHA-256 of ``items_for_result`` and
  ``result_list``'s source), and so are the templates: ``admin/change_list.html`` (the
  block rendered here) and the chosen ``change_list_results.html``; a site that overrides
  either, or a Django release that changed them, gets Django's drawing;
- the changelist is Django's :class:`ChangeList` showing :class:`PaymentAdmin`'s columns
  (:data:`PAYMENT_COLUMNS`: model fields, which Django looks up before any method of
  the model admin, and :func:`cmi_django.admin.payment_state`), the order id the only
  link, no editable column, not a popup, no ``to_field``;
- every payment's key is an integer.
"""

from __future__ import annotations

import hashlib
import inspect
import weakref
from functools import cache
from typing import Any

from django import template
from django.contrib.admin.templatetags import admin_list
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_field, display_for_value
from django.contrib.admin.views.main import ChangeList
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockNode
from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

register = template.Library()

__all__ = [
    "PAYMENT_COLUMNS",
    "block_in_use",
    "cmi_result_list",
    "draw_rows",
    "rows_in_use",
]

#: Django's functions this module stands for, as read here (SHA-256s of their source).
ITEMS_FOR_RESULT_SHA256 = frozenset(
    {
        "162476ae39ac0ac3cbeb82ffef725afadb633e87632312b338fd08deec0d1c8a",  # Django 5.2
        "b5a88ebd41e3ac4ec016545df88b4a53e975e2a17448036bd4dcf6df9118e0e0",  # Django 6.1
    }
)
RESULT_LIST_SHA256 = frozenset(
    {"42f01b684881f973b214894fc658c4e173400738e491c9aceabdcdb50a6e5e2d"}  # 5.2 to 6.1
)
#: ``admin/change_list_results.html`` as Django ships it (the table's template).
RESULTS_TEMPLATE_SHA256 = frozenset(
    {
        "c8ea5bd68f8be58b3d1a2440fe7097a05848cd11035572c1b98cd9935c6bc75c",  # Django 5.2
        "165b86b603f97e32c1cf755ded528e4b7e2a8e6ddfb25ce136286105e9c52fd1",  # Django 6.1
    }
)
#: ``admin/change_list.html`` as Django ships it (whose ``result_list`` block is rendered).
CHANGE_LIST_TEMPLATE_SHA256 = frozenset(
    {
        "20b8d0e45467ccd3ce7ca41c7030fc4f9e7cdc0e51fb934866e7f74040795852",  # Django 5.2
        "613098bd9f37a1fecf1dd677e1182fc9494d049be4e4be52a256fdcda91ecb30",  # Django 6.1
    }
)
#: Stands for a payment's key in the page's change link (no character admin's quote escapes).
KEY_PLACEHOLDER = "CMIKEYPLACEHOLDER"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def _django_code_known() -> bool:
    """Django's ``items_for_result`` and ``result_list`` are the versions drawn here."""
    return (
        _sha256(inspect.getsource(admin_list.items_for_result)) in ITEMS_FOR_RESULT_SHA256
        and _sha256(inspect.getsource(admin_list.result_list)) in RESULT_LIST_SHA256
    )


# A template's verdict, kept while the (cached) template lives: its source is read once.
_KNOWN_TEMPLATES: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _origin_known(key: Any, origin: Any, known: frozenset[str]) -> bool:
    try:
        return _KNOWN_TEMPLATES[key]
    except KeyError:
        pass
    try:
        source = origin.loader.get_contents(origin)
    except Exception:  # noqa: BLE001 - an origin that cannot be read is not known
        verdict = False
    else:
        verdict = _sha256(source) in known
    _KNOWN_TEMPLATES[key] = verdict
    return verdict


def _payment_columns() -> tuple[Any, ...]:
    from cmi_django.admin import PaymentAdmin

    return tuple(PaymentAdmin.list_display)


#: The payments list's columns as :class:`cmi_django.admin.PaymentAdmin` lists them.
PAYMENT_COLUMNS: tuple[str, ...] = (
    "oid",
    "platform",
    "reference",
    "amount",
    "currency",
    "payment_state",
    "created_at",
)


def rows_in_use(cl: Any) -> bool:
    """Whether the rows of ``cl`` are the ones :func:`draw_rows` draws as Django would."""
    from cmi_django.models import Payment

    if not _django_code_known() or type(cl) is not ChangeList or cl.model is not Payment:
        return False
    columns = _payment_columns()
    return (
        list(cl.list_display) == list(columns)
        and list(cl.list_display_links or ()) == ["oid"]
        and cl.list_display_links is not None
        and not cl.formset
        and not cl.is_popup
        and not cl.to_field
        and [_column_name(column) for column in columns] == list(PAYMENT_COLUMNS)
        and getattr(columns[5], "empty_value_display", None) is None
    )


def _column_name(column: Any) -> str:
    return column if isinstance(column, str) else column.__name__


def _link_parts(cl: Any) -> tuple[str, str] | None:
    """The page's change link, escaped, cut around the payment's key; None if it cannot be."""
    url = reverse(
        f"admin:{cl.opts.app_label}_{cl.opts.model_name}_change",
        args=(KEY_PLACEHOLDER,),
        current_app=cl.model_admin.admin_site.name,
    )
    url = add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": cl.opts}, url)
    parts = str(conditional_escape(url)).split(KEY_PLACEHOLDER)
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def _django_link(cl: Any, result: Any) -> str:
    url = add_preserved_filters(
        {"preserved_filters": cl.preserved_filters, "opts": cl.opts}, cl.url_for_result(result)
    )
    return str(conditional_escape(url))


def draw_rows(cl: Any) -> list[SafeString] | None:
    """Each row's cells as Django's ``items_for_result`` writes them, or None (then Django's
    own code draws the list): only while :func:`rows_in_use`."""
    results = list(cl.result_list)
    if any(type(result.pk) is not int for result in results):
        return None
    meta = cl.model._meta
    fields = [meta.get_field(name) for name in ("oid", "platform", "reference", "amount")]
    currency, created_at = meta.get_field("currency"), meta.get_field("created_at")
    oid_field, platform, reference, amount = fields
    state = _payment_columns()[5]
    empty = cl.model_admin.get_empty_value_display()
    link = _link_parts(cl) if results else None
    if results and (link is None or _django_link(cl, results[0]) != str(results[0].pk).join(link)):
        return None
    escape = conditional_escape
    rows = []
    for result in results:
        label = state(result)
        if isinstance(label, str) and label.strip() == "":
            label = ""
        rows.append(
            SafeString(
                f'<th class="field-oid"><a href="{link[0]}{result.pk}{link[1]}">'  # type: ignore[index]
                f"{escape(display_for_field(result.oid, oid_field, empty, avoid_link=True))}"
                f'</a></th><td class="field-platform">'
                f"{escape(display_for_field(result.platform, platform, empty))}"
                f'</td><td class="field-reference">'
                f"{escape(display_for_field(result.reference, reference, empty))}"
                f'</td><td class="field-amount">'
                f"{escape(display_for_field(result.amount, amount, empty))}"
                f'</td><td class="field-currency">'
                f"{escape(display_for_field(result.currency, currency, empty))}"
                f'</td><td class="field-payment_state">'
                f"{escape(display_for_value(label, empty, False))}"
                f'</td><td class="field-created_at nowrap">'
                f"{escape(display_for_field(result.created_at, created_at, empty))}</td>"
            )
        )
    return rows


def _results_context(cl: Any, rows: list[SafeString]) -> dict[str, Any]:
    """Django's ``result_list(cl)``, each row one drawn item."""
    headers = list(admin_list.result_headers(cl))
    num_sorted_fields = 0
    for header in headers:
        if header["sortable"] and header["sorted"]:
            num_sorted_fields += 1
    return {
        "cl": cl,
        "result_hidden_fields": list(admin_list.result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": num_sorted_fields,
        "results": [admin_list.ResultList(None, [row]) for row in rows],
    }


def _django_result_list_node(block: BlockNode) -> Any:
    """The block's ``{% result_list cl %}`` node (Django's tag), or None."""
    found = [
        node
        for node in block.nodelist
        if getattr(node, "func", None) is admin_list.result_list
        and getattr(node, "template_name", None) == "change_list_results.html"
    ]
    return found[0] if len(found) == 1 else None


def block_in_use(block: BlockNode | None) -> bool:
    """Whether ``block`` (the ``result_list`` block our template extends) is Django's."""
    if block is None or _django_result_list_node(block) is None:
        return False
    return _origin_known(block, block.origin, CHANGE_LIST_TEMPLATE_SHA256)


def _draw_table(node: Any, context: Any, cl: Any) -> str | None:
    """What Django's ``{% result_list cl %}`` node writes, drawn here; None if not ours."""
    if not rows_in_use(cl):
        return None
    opts = context["opts"]
    app_label, model_name = opts.app_label.lower(), opts.model_name
    table = context.template.engine.select_template(
        [
            f"admin/{app_label}/{model_name}/{node.template_name}",
            f"admin/{app_label}/{node.template_name}",
            f"admin/{node.template_name}",
        ]
    )
    if not _origin_known(table, table.origin, RESULTS_TEMPLATE_SHA256):
        return None
    rows = draw_rows(cl)
    if rows is None:
        return None
    new_context = context.new(_results_context(cl, rows))
    csrf_token = context.get("csrf_token")
    if csrf_token is not None:
        new_context["csrf_token"] = csrf_token
    return str(table.render(new_context))


@register.simple_tag(takes_context=True)
def cmi_result_list(context: Any, cl: Any) -> str:
    """The ``result_list`` block as Django's ``admin/change_list.html`` renders it, the
    table drawn by :func:`draw_rows` while the guards hold (else exactly ``{{ block.super }}``)."""
    block_context = context.render_context.get(BLOCK_CONTEXT_KEY)
    parent = block_context.get_block("result_list") if block_context is not None else None
    if not block_in_use(parent):
        return context["block"].super()  # type: ignore[no-any-return]
    node = _django_result_list_node(parent)  # type: ignore[arg-type]
    # BlockNode.render's steps for the parent block, its nodes rendered one by one.
    with context.push():
        pushed = block_context.pop("result_list")
        block = BlockNode(pushed.name, pushed.nodelist)
        block.context = context
        context["block"] = block
        try:
            parts = []
            for child in pushed.nodelist:
                drawn = _draw_table(child, context, cl) if child is node else None
                parts.append(drawn if drawn is not None else child.render_annotated(context))
        finally:
            block_context.push("result_list", pushed)
    return SafeString("".join(parts))
