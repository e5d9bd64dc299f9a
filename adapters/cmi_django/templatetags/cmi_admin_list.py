"""The Django admin's payments list, its rows drawn in Python (issue 16, goal 4).

``{% load cmi_admin_list %}`` in ``admin/cmi_django/payment/change_list.html``, whose
``result_list`` block is ``{% cmi_result_list cl %}``. The tag renders the block it stands
for (Django's, from ``admin/change_list.html``) node by node, as ``{{ block.super }}``
would, except Django's ``{% result_list cl %}``: there the table is written here as its
template (``change_list_results.html``, chosen as Django chooses it) writes it, from
Django's headers (``result_headers``) and the rows, one string a row, the cells written as
Django's ``items_for_result`` writes them (a cell's value still formatted by Django's
``display_for_field`` and ``display_for_value``, in the staff member's language). The
change link is reversed once a page, not once a row: the page's link with a placeholder
key is cut in two around it, and checked against Django's link for the page's first row.
The rows are read as named tuples of the columns drawn (:data:`ROW_COLUMNS`), the dates
written piece by piece as Django's ``localize`` writes them (:class:`_Dates`).

By profile, Django's ``items_for_result`` (7 cells a row, each a field lookup, a label, a
``format_html``, a ``reverse`` and the preserved filters' URL parsing for the link) was
half of the list's render. Django's own code runs instead, unchanged, unless every one of
these holds (:func:`rows_in_use`, :func:`block_in_use`):

- Django's code read here is a version known (SHA-256 of the source of
  ``items_for_result``, ``result_list``, ``display_for_field``, ``escape``; of the date
  formatting, ``localize``, ``date_format`` and ``dateformat.format``, else the dates
  alone are written by ``localize``), and so are the
  templates: ``admin/change_list.html`` (the block rendered here) and the chosen
  ``change_list_results.html``; a site that overrides either, or a Django release that
  changed them, gets Django's drawing;
- the changelist is Django's :class:`ChangeList` showing :class:`PaymentAdmin`'s columns
  (:data:`PAYMENT_COLUMNS`: model fields, which Django looks up before any method of
  the model admin, and :func:`cmi_django.admin.payment_state`), the order id the only
  link, no editable column, not a popup, no ``to_field``;
- every payment's key is an integer.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import weakref
from collections.abc import Container
from functools import cache
from typing import Any

from django import template
from django.contrib.admin.templatetags import admin_list
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_field, display_for_value
from django.contrib.admin.views.main import ChangeList
from django.core.validators import EMPTY_VALUES
from django.db import models
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockNode
from django.urls import reverse
from django.utils import dateformat, formats
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData, SafeString
from django.utils.text import capfirst
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]
from django.utils.translation import gettext

from cmi_django.listing import escape_text, local_text

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
DISPLAY_FOR_FIELD_SHA256 = frozenset(
    {
        "e1477baacf578aa97febb6f35aba582c89d30133d22236cd9c39aff8845d6f19",  # Django 5.2
        "d2472138b0b0f8e691c3d8ea783a5b0c4ca2d318fc0104df7725664cce9aeffc",  # Django 6.1
    }
)
#: What ``formats.localize`` runs for a date and time (its format written piece by piece):
#: ``localize``, ``date_format``, ``dateformat.format`` and ``Formatter.format``.
DATE_FORMAT_SHA256 = (
    "9a131eb23a1f61bd74f3e2ccf695b942d9933776eb15cbbc89588b6ecf3e91ac",
    "0ce5bd55cff8d100b0d89a48e2b7363f50aa965a32fce2849fe3a42e03714930",
    "0d5c48e966fe61b5d2312984ebb0448f44ab18eea821359378a5fcb55f7a44be",
    "59b3ba26f0481b5a56db946e031c79f17b6ecaf7a1101a3148e7ca3cac549f81",
)  # Django 5.2 to 6.1
#: ``dateformat``'s specifiers that read only the date (``N``: "Jan."; ``S``: "th").
DATE_SPECIFIERS = frozenset("bdDEFjlLmMnNoStwWyYz")
#: Those that read only the time of day (``P``: "11:30 p.m.", "midnight").
TIME_SPECIFIERS = frozenset("aAfgGhHiPsu")
ESCAPE_SHA256 = frozenset(
    {"5d4441d1bf544f0b018dcd82ebb5640cb7881dc55e3245002af67cf9a9c7f2b8"}  # 5.2 to 6.1
)
RESULT_LIST_SHA256 = frozenset(
    {"42f01b684881f973b214894fc658c4e173400738e491c9aceabdcdb50a6e5e2d"}  # 5.2 to 6.1
)
#: ``admin/change_list_results.html`` as Django ships it (the table's template), and how
#: each version opens a sortable column's link (the versions' only difference).
RESULTS_TEMPLATE_SHA256 = {
    "c8ea5bd68f8be58b3d1a2440fe7097a05848cd11035572c1b98cd9935c6bc75c": "<a href=",  # 5.2
    "165b86b603f97e32c1cf755ded528e4b7e2a8e6ddfb25ce136286105e9c52fd1": (  # Django 6.1
        '<a role="button" href='
    ),
}
#: ``admin/change_list.html`` as Django ships it (whose ``result_list`` block is rendered).
CHANGE_LIST_TEMPLATE_SHA256 = frozenset(
    {
        "20b8d0e45467ccd3ce7ca41c7030fc4f9e7cdc0e51fb934866e7f74040795852",  # Django 5.2
        "613098bd9f37a1fecf1dd677e1182fc9494d049be4e4be52a256fdcda91ecb30",  # Django 6.1
    }
)
#: The columns a row's drawing reads (:func:`cmi_django.admin.payment_state` reads ``state``).
ROW_COLUMNS = ("id", "oid", "platform", "reference", "amount", "currency", "state", "created_at")
#: Stands for a payment's key in the page's change link (no character admin's quote escapes).
KEY_PLACEHOLDER = "CMIKEYPLACEHOLDER"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def _django_code_known() -> bool:
    """Django's ``items_for_result``, ``result_list``, ``display_for_field`` and ``escape``
    are the versions drawn here."""
    return (
        _sha256(inspect.getsource(admin_list.items_for_result)) in ITEMS_FOR_RESULT_SHA256
        and _sha256(inspect.getsource(admin_list.result_list)) in RESULT_LIST_SHA256
        and _sha256(inspect.getsource(display_for_field)) in DISPLAY_FOR_FIELD_SHA256
        and _sha256(inspect.getsource(escape)) in ESCAPE_SHA256
    )


@cache
def _date_code_known() -> bool:
    """Django's date formatting is the version :class:`_Dates` writes."""
    functions = (formats.localize, formats.date_format, dateformat.format)
    sources = [inspect.getsource(function) for function in functions]
    sources.append(inspect.getsource(dateformat.Formatter.format))
    return tuple(_sha256(source) for source in sources) == DATE_FORMAT_SHA256


class _Dates:
    """``formats.localize(template_localtime(value))`` for a page's dates and times, as
    Django writes it: the format's pieces split once a page, those that read only the date
    written once a day (month and day names are translated text: most of the cost)."""

    def __init__(self) -> None:
        pieces = dateformat.re_formatchars.split(str(formats.get_format("DATETIME_FORMAT")))
        self.pieces: list[tuple[str, str]] = []  # (kind, text): literal, date or time
        for index, piece in enumerate(pieces):
            if index % 2 == 0:
                if piece:
                    self.pieces.append(("", dateformat.re_escaped.sub(r"\1", piece)))
            elif piece in DATE_SPECIFIERS:
                self.pieces.append(("date", piece))
            elif piece in TIME_SPECIFIERS:
                self.pieces.append(("time", piece))
            else:  # a time zone's (e, I, O, T, Z) or the whole value's (c, r, U)
                self.pieces.append(("other", piece))
        self.exact = _date_code_known() and all(kind != "other" for kind, _ in self.pieces)
        self.days: dict[Any, list[str]] = {}

    def __call__(self, value: Any) -> str:
        if not self.exact or not isinstance(value, datetime.datetime):
            return local_text(value)
        local = template_localtime(value)
        written = dateformat.DateFormat(local)
        day = local.date()
        try:
            dated = self.days[day]
        except KeyError:
            dated = self.days[day] = [
                str(getattr(written, text)()) for kind, text in self.pieces if kind == "date"
            ]
        out = []
        at = 0
        for kind, text in self.pieces:
            if kind == "date":
                out.append(dated[at])
                at += 1
            elif kind == "time":
                out.append(str(getattr(written, text)()))
            else:
                out.append(text)
        return "".join(out)


# A template's SHA-256 if known, kept while the (cached) template lives: read once.
_KNOWN_TEMPLATES: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def _origin_known(key: Any, origin: Any, known: Container[str]) -> str | None:
    """The SHA-256 of ``origin``'s source if it is in ``known``, else None."""
    try:
        return _KNOWN_TEMPLATES[key]
    except KeyError:
        pass
    try:
        digest: str | None = _sha256(origin.loader.get_contents(origin))
    except Exception:  # noqa: BLE001 - an origin that cannot be read is not known
        digest = None
    verdict = digest if digest in known else None
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


def _fields_known(meta: Any) -> bool:
    """The columns' fields are the types :func:`draw_rows` formats as Django does."""
    types: dict[str, type[Any]] = {
        "oid": models.CharField,
        "platform": models.CharField,
        "reference": models.CharField,
        "currency": models.CharField,
        "amount": models.DecimalField,
        "created_at": models.DateTimeField,
    }
    for name, kind in types.items():
        field: Any = meta.get_field(name)
        if type(field) is not kind or field.flatchoices or field.remote_field or field.choices:
            return False
        if list(field.empty_values) != list(EMPTY_VALUES) or field.name == "password":
            return False
    return True


def draw_rows(cl: Any) -> list[SafeString] | None:
    """Each row's cells as Django's ``items_for_result`` writes them, or None (then Django's
    own code draws the list): only while :func:`rows_in_use`.

    A cell's value is formatted as Django's ``display_for_field`` formats it for its field's
    type (text without choices: ``display_for_value``; a decimal: ``number_format`` with
    the field's places; a date and time: ``localize`` in the current time zone), without
    walking ``display_for_field``'s tests for every other type on every cell.
    """
    meta = cl.model._meta
    if not _fields_known(meta) or meta.pk.attname != "id":
        return None
    page = cl.result_list
    if isinstance(page, models.QuerySet) and page._result_cache is None:
        # The page's rows as named tuples of the columns read (the cells, the state's
        # label, the link's key): no model instance built for each row.
        results: list[Any] = list(page.values_list(*ROW_COLUMNS, named=True))
    else:
        results = list(page)
    if any(type(result.id) is not int for result in results):
        return None
    places = meta.get_field("amount").decimal_places
    state = _payment_columns()[5]
    empty = cl.model_admin.get_empty_value_display()
    escaped_empty = escape_text(empty)
    link = _link_parts(cl) if results else None
    if results and (link is None or _django_link(cl, results[0]) != str(results[0].id).join(link)):
        return None
    before, after = link or ("", "")
    dates = _Dates()

    def text(value: Any) -> str:
        if value in EMPTY_VALUES:
            return escaped_empty
        return escape_text(display_for_value(value, empty))

    rows = []
    for result in results:
        label = state(result)
        if isinstance(label, str) and label.strip() == "":
            label = ""
        amount = result.amount
        created = result.created_at
        rows.append(
            SafeString(
                f'<th class="field-oid"><a href="{before}{result.id}{after}">'
                f"{text(result.oid)}"
                f'</a></th><td class="field-platform">{text(result.platform)}'
                f'</td><td class="field-reference">{text(result.reference)}'
                '</td><td class="field-amount">'
                + (
                    escaped_empty
                    if amount in EMPTY_VALUES
                    else escape_text(formats.number_format(amount, places))
                )
                + f'</td><td class="field-currency">{text(result.currency)}'
                f'</td><td class="field-payment_state">'
                f"{escape_text(display_for_value(label, empty, False))}"
                '</td><td class="field-created_at nowrap">'
                + (escaped_empty if created in EMPTY_VALUES else escape_text(dates(created)))
                + "</td>"
            )
        )
    return rows


def _header(header: dict[str, Any], num_sorted_fields: int, sortable_link: str) -> str:
    """One ``<th>`` as ``change_list_results.html`` writes it from Django's header."""
    text = header["text"]
    label = capfirst(text)
    if not isinstance(text, SafeData):
        label = escape_text(label)
    # Django's template: the ``{{ }}`` values escaped, the tags' text not.
    out = [f'\n<th scope="col"{escape_text(header["class_attrib"])}>\n   ']
    if header["sortable"] and header["sort_priority"] > 0:
        priority = header["sort_priority"]
        out.append(
            '\n       <div class="sortoptions">\n'
            f'         <a class="sortremove" href="{escape_text(header["url_remove"])}" '
            f'title="{escape_text(gettext("Remove from sorting"))}"></a>\n         '
        )
        if num_sorted_fields > 1:
            title = gettext("Sorting priority: %(priority_number)s") % {
                "priority_number": escape_text(formats.localize(priority))
            }
            out.append(
                f'<span class="sortpriority" title="{title}">'
                f"{escape_text(formats.localize(priority))}</span>"
            )
        order = "ascending" if header["ascending"] else "descending"
        out.append(
            f'\n         <a href="{escape_text(header["url_toggle"])}" class="toggle {order}" '
            f'title="{escape_text(gettext("Toggle sorting"))}"></a>\n       </div>\n   '
        )
    out.append('\n   <div class="text">')
    if header["sortable"]:
        out.append(f'{sortable_link}"{escape_text(header["url_primary"])}">{label}</a>')
    else:
        out.append(f"<span>{label}</span>")
    out.append('</div>\n   <div class="clear"></div>\n</th>')
    return "".join(out)


def draw_table(cl: Any, rows: list[SafeString], sortable_link: str) -> SafeString:
    """``change_list_results.html`` as Django renders it from ``result_list(cl)``, with
    Django's headers and the rows of :func:`draw_rows` (no hidden fields: no formset)."""
    out = ["\n\n"]
    if rows:
        headers = list(admin_list.result_headers(cl))
        num_sorted_fields = sum(1 for h in headers if h["sortable"] and h["sorted"])
        out.append('\n<div class="results">\n<table id="result_list">\n<thead>\n<tr>\n')
        out.extend(_header(header, num_sorted_fields, sortable_link) for header in headers)
        out.append("\n</tr>\n</thead>\n<tbody>\n")
        out.extend(f"\n\n<tr>{row}</tr>\n" for row in rows)
        out.append("\n</tbody>\n</table>\n</div>\n")
    out.append("\n")
    return SafeString("".join(out))


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
    return _origin_known(block, block.origin, CHANGE_LIST_TEMPLATE_SHA256) is not None


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
    digest = _origin_known(table, table.origin, RESULTS_TEMPLATE_SHA256)
    if digest is None:
        return None
    rows = draw_rows(cl)
    if rows is None:
        return None
    return draw_table(cl, rows, RESULTS_TEMPLATE_SHA256[digest])


@register.simple_tag(takes_context=True)
def cmi_result_list(context: Any, cl: Any) -> str:
    """The ``result_list`` block as Django's ``admin/change_list.html`` renders it, the
    table drawn by :func:`draw_rows` while the guards hold (else exactly ``{{ block.super }}``)."""
    block_context = context.render_context.get(BLOCK_CONTEXT_KEY)
    parent = block_context.get_block("result_list") if block_context is not None else None
    if not block_in_use(parent):
        return context["block"].super()
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
