"""The payments viewset of the Wagtail admin: list, filters, CSV, detail and staff actions.

A :class:`~wagtail.admin.viewsets.model.ModelViewSet` over
:class:`~cmi_wagtail.models.WagtailPayment` (the shared layer's payments of this
platform), read-only: no add, edit or delete. The detail (inspect) view shows the
payment, its callbacks and okUrl/failUrl returns with the replies sent, and its
operations; capture, void, partial refund and "refresh from CMI" go through
:func:`cmi_django.actions.staff_action` (shared with Oscar's dashboard: each rendered form
carries a fresh idempotency key, so a form sent twice is one operation) and report CMI's
refusals as admin messages.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from collections import OrderedDict
from decimal import Decimal
from typing import Any, ClassVar

import django_filters
from cmi_django.actions import ACTIONS, posted_staff_action
from cmi_django.dashboard import action_context
from cmi_django.display import currency_code, format_money, money_for_csv
from cmi_django.i18n import STATE_LABELS, isolate, state_label
from cmi_django.listing import (
    BoundedPaginator,
    cell_text,
    distinct_values,
    escape_text,
    list_limit,
)
from django import forms
from django.conf import settings
from django.contrib.admin.utils import quote
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import (
    EmptyResultSet,
    FullResultSet,
    ImproperlyConfigured,
    PermissionDenied,
)
from django.db import connections, models, router, transaction
from django.forms.renderers import get_default_renderer
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, resolve_url
from django.template import Context, engines
from django.template.loader import render_to_string, select_template
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, escape, escapejs, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from wagtail.admin import messages
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.paginator import WagtailPaginator
from wagtail.admin.ui.tables import Column, Table, TitleColumn
from wagtail.admin.views.generic import IndexView, InspectView
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.models import Page

from cmi_core.codes import LANGUAGE_CHOICES
from cmi_core.money import get_currency
from cmi_wagtail.models import WagtailPayment
from cmi_wagtail.templatetags.cmi_wagtail_chrome import (
    CHROME_TEMPLATE,
    WAGTAIL_INDEX,
    chrome_in_use,
    kept_dropdown,
    prime_explorable_root,
    slim_header_name,
)

__all__ = ["PaymentFilterSet", "PaymentViewSet"]

#: What people read for each column, field and CSV heading (the shared model's fields
#: have no ``verbose_name``: adding them there would be a migration for every platform).
LABELS: dict[str, Any] = {
    "oid": gettext_lazy("CMI order id"),
    "state": gettext_lazy("State"),
    "amount": gettext_lazy("Amount"),
    "currency": gettext_lazy("Currency"),
    "currency_alpha": gettext_lazy("Currency"),
    "authorised_amount": gettext_lazy("Authorised"),
    "captured_amount": gettext_lazy("Captured"),
    "refunded_amount": gettext_lazy("Refunded"),
    "capture_mode": gettext_lazy("Capture mode"),
    "declined_attempts": gettext_lazy("Declined attempts"),
    "attention_reason": gettext_lazy("Needs attention"),
    "email": gettext_lazy("E-mail"),
    "lang": gettext_lazy("Language"),
    "trans_id": gettext_lazy("CMI transaction"),
    "auth_code": gettext_lazy("Authorisation code"),
    "host_ref_num": gettext_lazy("Bank reference"),
    "masked_pan": gettext_lazy("Card"),
    "card_brand": gettext_lazy("Card brand"),
    "proc_return_code": gettext_lazy("Return code"),
    "error_code": gettext_lazy("Error code"),
    "config_key": gettext_lazy("Configuration"),
    "created_at": gettext_lazy("Created"),
    "updated_at": gettext_lazy("Updated"),
    "page_title": gettext_lazy("Page"),
    "payer": gettext_lazy("Payer"),
}
_MONEY_FIELDS = ("amount", "authorised_amount", "captured_amount", "refunded_amount")
#: A payment id no list shows, to find where the id goes in the detail's URL.
_URL_MARK = 987654321987


def _local(value: datetime.datetime) -> str:
    """A time in the site's time zone (``TIME_ZONE``), as the list shows it."""
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


def _permission_policy() -> Any:
    """The payments' permission policy: Wagtail 8's registry, else (Wagtail 7.0 LTS, which
    has none) the model's default policy, which is what Wagtail 7's viewsets use too."""
    try:
        from wagtail.permissions import policy_registry
    except ImportError:
        from wagtail.permission_policies import ModelPermissionPolicy

        return ModelPermissionPolicy(WagtailPayment)
    return policy_registry.get_by_type(WagtailPayment)


try:
    from wagtail.admin.filters import NumberRangeWidget
except ImportError:  # Wagtail 7.0 LTS has no NumberRangeWidget yet: the same, from Wagtail 8
    from django_filters.widgets import SuffixedMultiWidget

    class NumberRangeWidget(SuffixedMultiWidget):  # type: ignore[no-redef]  # Wagtail 7 fallback
        """A minimum and a maximum, side by side (Wagtail 8's widget of the same name)."""

        template_name = "wagtailadmin/widgets/daterange_input.html"  # Wagtail 7's two inputs
        suffixes: ClassVar[list[str]] = ["min", "max"]

        def __init__(self, attrs: dict[str, Any] | None = None) -> None:
            widgets = (
                forms.NumberInput(attrs={"placeholder": gettext_lazy("Minimum"), "min": "0"}),
                forms.NumberInput(attrs={"placeholder": gettext_lazy("Maximum"), "min": "0"}),
            )
            super().__init__(widgets, attrs)

        def decompress(self, value: Any) -> list[Any]:
            return [value.start, value.stop] if value else [None, None]


def _page_titles(ids: list[int]) -> dict[str, str]:
    """The titles of pages ``ids`` (the pages that took payments), by id as text.

    One statement written here, its names quoted from the model's metadata and the ids
    as parameters: Wagtail's page queryset costs five times the statement to set up
    (0.4 ms of a list's render). Unordered: the choices are sorted by title.
    """
    if not ids:
        return {}
    meta = Page._meta
    connection = connections[router.db_for_read(Page)]
    quote = connection.ops.quote_name
    pk, title = quote(meta.pk.column), quote(meta.get_field("title").column)
    marks = ", ".join(["%s"] * len(ids))
    sql = f"SELECT {pk}, {title} FROM {quote(meta.db_table)} WHERE {pk} IN ({marks})"  # noqa: S608 - names quoted, ids as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return {str(key): str(text) for key, text in cursor.fetchall()}


def _page_choices() -> list[tuple[str, str]]:
    """The pages that took payments, by title: their ids through the payments' index.

    The references (page ids) come from :func:`cmi_django.listing.distinct_values` (one
    index probe per page, not a ``DISTINCT`` over every payment), the titles from the pages
    table; a deleted page keeps the title its latest payment recorded.
    """
    references = distinct_values(WagtailPayment.objects.all(), "reference")
    # Page ids are what checkout writes; anything else (or too long for an integer
    # column) is only looked up in the payments.
    ids = [int(ref) for ref in references if ref.isascii() and ref.isdigit() and len(ref) < 10]
    titles = _page_titles(ids)
    for reference in references:
        if reference not in titles:
            recorded = (
                WagtailPayment.objects.filter(reference=reference)
                .values_list("data__page_title", flat=True)
                .first()
            )
            titles[reference] = str(recorded or reference)
    return sorted(titles.items(), key=lambda item: item[1].lower())


def _count_up_to(queryset: Any, most: int) -> int | None:
    """How many of ``queryset``'s rows there are, counting ``most`` at most: one statement
    written here around the queryset's own condition (compiled by Django, its values as
    parameters), ``SELECT COUNT(*) FROM (SELECT 1 ... WHERE ... LIMIT most)``.

    What :class:`~cmi_django.listing.BoundedPaginator` counts, without Django's aggregate
    over a sliced ``values()`` queryset: compiling that costs more than the index range it
    counts (0.5 ms of a render). None for anything but a plain filter of one table (a
    join, a distinct, an annotation, a slice, a search backend's results): the
    paginator counts those itself.
    """
    if not isinstance(queryset, models.QuerySet):
        return None
    query = queryset.query
    table = queryset.model._meta.db_table
    if (
        query.distinct
        or query.combinator
        or query.annotations
        or query.extra
        or query.extra_tables
        or query.group_by is not None
        or query.low_mark
        or query.high_mark is not None
        or any(alias != table for alias in query.alias_map)
    ):
        return None
    connection = connections[queryset.db]
    try:
        where, params = query.get_compiler(connection=connection).compile(query.where)
    except FullResultSet:  # no condition
        where, params = "", ()
    except EmptyResultSet:  # a condition nothing meets (Django counts 0 without asking)
        return 0
    quote = connection.ops.quote_name
    condition = f" WHERE {where}" if where else ""
    sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {quote(table)}{condition} LIMIT %s) subquery"  # noqa: S608 - the table's name quoted, the condition Django's, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, most])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


class PaymentPaginator(BoundedPaginator, WagtailPaginator):
    """Wagtail's paginator, counting at most ``CMI_STAFF_LIST_LIMIT`` payments (in one
    statement of its own for the list's plain filters: :func:`_count_up_to`)."""

    @cached_property
    def _bounded(self) -> tuple[int, bool]:
        limit = list_limit()
        counted = _count_up_to(self.object_list, limit + 1)
        if counted is None:
            return super()._bounded
        return min(counted, limit), counted > limit

    @cached_property
    def items_count_label(self) -> str:
        if not self.truncated:
            return str(super().items_count_label)
        return ngettext(
            "More than %(count)s payment match: the newest is listed (filter by date to see "
            "older ones)",
            "More than %(count)s payments match: the newest %(count)s are listed (filter by "
            "date to see older ones)",
            self.count,
        ) % {"count": self.count_display}


def _cell_text(value: Any, context: Any, blank: Any = "") -> str:
    """A cell's value as Wagtail's cell templates print it, escaped: ``blank`` when empty,
    an integer unlocalised, anything else as ``{{ value }}`` would in the table's context
    (local time and localised as its ``use_tz`` and ``use_l10n`` say)."""
    if isinstance(value, str):  # most cells: what {{ value }} does to text, without its steps
        return escape_text(value if value.strip() else blank)
    if value is None:
        return escape_text(blank)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, datetime.datetime) and not str(value).strip():
        return escape_text(blank)
    return cell_text(value, use_tz=context.use_tz, use_l10n=context.use_l10n)


class PlainHeaderMixin:
    """A header that sorts nothing written in Python: ``wagtailadmin/tables/column_header.html``
    reduced to what it writes then (``<th>`` and the label); a sorting header (the date)
    goes through Wagtail's template, its links and titles."""

    sort_key: Any
    classname: Any
    label: Any

    def render_header_html(self, parent_context: Any) -> str:
        if self.sort_key:
            return str(super().render_header_html(parent_context))  # type: ignore[misc]
        classes = f' class="{escape(self.classname)}"' if self.classname else ""
        return mark_safe(f"<th{classes}>{conditional_escape(self.label)}</th>")  # noqa: S308


class PlainColumn(PlainHeaderMixin, Column):
    """Wagtail's :class:`~wagtail.admin.ui.tables.Column`, its cell written in Python.

    Wagtail renders each cell from a template (``wagtailadmin/tables/cell.html``): a new
    context and a template render per cell, 120 a page, the list's largest cost. This writes
    the same markup (``<td>`` and the value as ``{{ value }}`` prints it) directly.
    """

    def render_cell_html(self, instance: Any, parent_context: Any) -> str:
        return SafeString(self.cell_html(instance, parent_context, self.cell_opening()))

    def cell_opening(self) -> str:
        """The cell's opening tag, the same for every row (built once a table)."""
        return f'<td class="{escape_text(self.classname)}">' if self.classname else "<td>"

    def cell_html(self, instance: Any, parent_context: Any, opening: str) -> str:
        """The cell's markup, escaped (:class:`PaymentTable` joins them, then marks safe)."""
        text = _cell_text(self.get_value(instance), parent_context, self.empty_value_display)
        return f"{opening}{text}</td>"


class PlainTitleColumn(PlainHeaderMixin, TitleColumn):
    """The first column: the value linked to the payment's detail, written in Python like
    :class:`PlainColumn` (``wagtailadmin/tables/title_cell.html``'s markup). A row with
    buttons (none in this list, see :meth:`PaymentIndexView.get_list_buttons`) goes
    through Wagtail's template."""

    def render_cell_html(self, instance: Any, parent_context: Any) -> str:
        return SafeString(self.cell_html(instance, parent_context, self.cell_opening()))

    def cell_opening(self) -> str:
        classes = escape_text(f"{self.classname} title" if self.classname else "title")
        return f'<td class="{classes}"><div class="title-wrapper">'

    def cell_html(self, instance: Any, parent_context: Any, opening: str) -> str:
        """The cell's markup, escaped; a row with buttons as Wagtail's template writes it."""
        buttons = getattr(self, "get_buttons", None)
        if buttons is not None and buttons(instance, parent_context):
            return str(super().render_cell_html(instance, parent_context))
        text = _cell_text(self.get_value(instance), parent_context, self.empty_value_display)
        url = self.get_link_url(instance, parent_context)
        if url:
            text = f'<a href="{escape_text(url)}">{text}</a>'
        return f"{opening}{text}</div></td>"


#: The columns whose cells :class:`PaymentTable` writes itself (their ``cell_html``).
_PLAIN = (PlainColumn, PlainTitleColumn)


def _attrs(attrs: dict[str, Any]) -> str:
    """HTML attributes as ``wagtailadmin/shared/attrs.html`` writes them: ``True`` alone,
    ``False`` left out, any other value escaped in double quotes."""
    return mark_safe(  # noqa: S308 - each part went through format_html
        "".join(
            format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)
            for name, value in attrs.items()
            if value is not False
        )
    )


class PaymentTable(Table):
    """Wagtail's :class:`~wagtail.admin.ui.tables.Table`, written in Python.

    The markup of ``wagtailadmin/tables/table.html`` (caption, column widths, header row,
    one ``<tr>`` per row), without its template: the template's loop costs an include per
    row (the row's attributes) and a ``{% component %}`` tag per cell, more than the cells
    themselves once they are written in Python (:class:`PlainColumn`). Headers and cells
    are still each column's own ``render_header_html`` and ``render_cell_html``, given the
    context the template would give them (``table``, ``request``, ``column``, ``row``).
    """

    def render_html(self, parent_context: Any = None) -> str:
        context = Context(self.get_context_data(parent_context))
        parts: list[str] = [format_html("<table{}>", _attrs(self.attrs))]
        caption = self.get_caption()
        if caption:
            parts.append(format_html('<caption class="w-sr-only">{}</caption>', caption))
        columns = list(self.columns.values())
        if self.has_column_widths():
            parts.extend(
                format_html('<col width="{}" />', column.width) if column.width else "<col />"
                for column in columns
            )
        row_class = (
            format_html(' class="{}"', self.header_row_classname)
            if self.header_row_classname
            else ""
        )
        parts.append(f"<thead><tr{row_class}>")
        for column in columns:
            with context.push(column=column):
                parts.append(str(column.header.render_html(context)))
        parts.append("</tr></thead><tbody>")
        # Each plain column's cell opening is built once a table, not once a row.
        cells = [
            (column, column.cell_opening() if isinstance(column, _PLAIN) else None)
            for column in columns
        ]
        for row in self.rows:
            parts.append(f"<tr{_attrs(row.attrs)}>")
            with context.push(row=row):
                parts.extend(
                    str(column.render_cell_html(row.instance, context))
                    if opening is None
                    else column.cell_html(row.instance, context, opening)
                    for column, opening in cells
                )
            parts.append("</tr>")
        parts.append("</tbody></table>")
        return mark_safe("".join(parts))  # noqa: S308 - every value above went through format_html


def _pagination_html(request: HttpRequest, page: Any, page_range: Any, url_path: str) -> str:
    """Wagtail's ``wagtailadmin/shared/pagination_nav.html``, written in Python.

    The same ``<nav>``: "Page 1 of 500", Previous, the page numbers (Wagtail's elided
    range), Next and the count, each link the current query with ``p`` replaced (Wagtail's
    ``{% querystring %}``), numbers grouped as ``intcomma`` groups them, the arrows from
    Wagtail's icon template. The template's tags (a query string, a grouped number and
    a few includes a link) cost more than the rest of the list's footer.
    """

    query = request.GET.copy()  # once: each link sets "p" again, in the same place

    def link(number: Any) -> str:
        query["p"] = str(number)
        return escape(f"{url_path}?{query.urlencode()}")

    def icon(name: str) -> str:
        context = {"name": name, "classname": "default", "title": None, "wrapped": False}
        return render_to_string("wagtailadmin/shared/icon.html", context)

    paginator = page.paginator
    heading = _("Page %(page_num)s of %(total_pages)s") % {
        "page_num": intcomma(page.number),
        "total_pages": intcomma(paginator.num_pages),
    }
    previous = f' href="{link(page.previous_page_number())}"' if page.has_previous() else ""
    following = f' href="{link(page.next_page_number())}"' if page.has_next() else ""
    parts = [
        f'<nav class="pagination" aria-label="{escape(_("Pagination"))}">',
        f'<div class="pagination__start"><p>{escape(heading)}</p></div><ul>',
        f'<li class="prev"><a{previous}>{icon("arrow-left")} {escape(_("Previous"))}</a></li>',
    ]
    for number in page_range:
        current = number == page.number
        classes = "pagination__page-number" + (
            " pagination__page-number--current" if current else ""
        )
        if number == paginator.ELLIPSIS:
            parts.append(f'<li class="{classes}"><span>{escape(number)}</span></li>')
        else:
            aria = ' aria-current="page"' if current else ""
            parts.append(
                f'<li class="{classes}"><a href="{link(number)}"{aria}>'
                f"{escape(intcomma(number))}</a></li>"
            )
    parts += [
        f'<li class="next"><a{following}>{escape(_("Next"))} {icon("arrow-right")}</a></li></ul>',
        f'<div class="pagination__end">{escape(capfirst(paginator.items_count_label))}</div></nav>',
    ]
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


class IndexedListMixin:
    """An index view that stays fast at any size: a bounded count (:class:`PaymentPaginator`),
    newest first, sortable by date only (the one order an index serves at any size)."""

    paginator_class = PaymentPaginator
    table_class = PaymentTable
    ordering: Any

    @cached_property
    def columns(self) -> list[Any]:
        columns = list(super().columns)  # type: ignore[misc]  # IndexView, beside the mixin
        for column in columns:
            if getattr(column, "sort_key", None) != "created_at":
                column.sort_key = None
        return columns

    def get_valid_orderings(self) -> list[str]:
        return ["created_at", "-created_at"]

    def order_queryset(self, queryset: Any) -> Any:
        sign = "" if self.ordering == "created_at" else "-"
        return queryset.order_by(f"{sign}created_at", f"{sign}id")


class PlainSelect(forms.Select):
    """Django's :class:`~django.forms.Select`, its options written in Python.

    The markup of ``django/forms/widgets/select.html`` and ``select_option.html``: the
    templates cost two renders an option (the option, then its attributes), the filters'
    largest part once the "Page" filter offers a few dozen pages.
    """

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        # The select's own context (name, attributes, chosen values), not the options':
        # Django builds a dictionary of eleven keys an option (``optgroups``), read here
        # for its value, label and "selected" only.
        widget = forms.Widget.get_context(self, name, value, attrs)["widget"]
        if self.allow_multiple_selected:
            widget["attrs"]["multiple"] = True
        chosen = widget["value"]
        parts: list[str] = [
            format_html('<select name="{}"{}>', widget["name"], _attrs(widget["attrs"]))
        ]
        has_selected = False
        for option_value, option_label in self.choices:
            group = isinstance(option_label, list | tuple)
            if group:
                label = "" if option_value is None else option_value
                parts.append(f'\n  <optgroup label="{escape_text(label)}">')
            for sub_value, sub_label in option_label if group else [(option_value, option_label)]:
                text = "" if sub_value is None and not group else str(sub_value)
                # Django's rule: the first option whose value is chosen (all, if multiple).
                selected = (not has_selected or self.allow_multiple_selected) and text in chosen
                has_selected |= selected
                parts.append(
                    f'\n  <option value="{escape_text(text)}"{" selected" if selected else ""}>'
                    f"{escape_text(sub_label)}</option>"
                )
            if group:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return SafeString("".join(parts))  # every value above went through escape_text


#: The templates :class:`PlainRangeMixin` writes in Python, by the SHA-256 of the source it
#: writes (Wagtail 8.0's and Django 5's): a renderer whose template differs (a site's
#: own, another release) draws the widget from its templates.
_RANGE_TEMPLATES = {
    "wagtailadmin/widgets/range_input.html": (
        "1be7d46e968de7d97585eba811f0e16a465d15eb4ddc7d3ee6ea7dffd763403f"
    ),
    "wagtailadmin/widgets/date_input.html": (
        "2557f7a4fd543d7cd6f192a97fdd0c12ebfad9a8d4ab2b7fe72a2f011cd049c8"
    ),
    "django/forms/widgets/number.html": (
        "7d7a5bc4ccc075bbff6af7d60b9e3ae200f68c59e0f77d44abbbf36f3cb5fb20"
    ),
    "django/forms/widgets/date.html": (
        "7d7a5bc4ccc075bbff6af7d60b9e3ae200f68c59e0f77d44abbbf36f3cb5fb20"
    ),
    "django/forms/widgets/input.html": (
        "770cf3acba1c18b65021a19efbf5fc93bcfcee357a005b67dbc2e2967527507d"
    ),
    "django/forms/widgets/attrs.html": (
        "f729483efe44660fabc76a8f2e0a1b464c3a66afd625233c92dd74e8fa5261ad"
    ),
}
_RANGE = "wagtailadmin/widgets/range_input.html"
_DATE_INPUT = "wagtailadmin/widgets/date_input.html"
_INPUTS = ("django/forms/widgets/number.html", "django/forms/widgets/date.html")


@functools.lru_cache(maxsize=8)
def _range_templates_known(renderer: Any) -> bool:
    """Whether ``renderer`` loads the templates :class:`PlainRangeMixin` writes, as written
    (their sources' SHA-256s: :data:`_RANGE_TEMPLATES`). Read once per renderer."""
    for name, digest in _RANGE_TEMPLATES.items():
        try:
            source = renderer.get_template(name).template.source
        except Exception:  # noqa: BLE001 - any renderer or template we cannot read: theirs
            return False
        if hashlib.sha256(source.encode()).hexdigest() != digest:
            return False
    return True


def _input_html(widget: dict[str, Any]) -> str:
    """``django/forms/widgets/input.html`` and its ``attrs.html`` for a widget's context,
    each value as ``{{ value|stringformat:'s' }}`` prints it (escaped unless safe)."""
    value = widget["value"]
    parts = [f'<input type="{escape_text(widget["type"])}" name="{escape_text(widget["name"])}"']
    if value is not None:
        parts.append(f' value="{escape_text(value)}"')
    for name, attr in widget["attrs"].items():
        if attr is True:
            parts.append(f" {escape_text(name)}")
        elif attr is not False:
            parts.append(f' {escape_text(name)}="{escape_text(attr)}"')
    parts.append(">\n")
    return "".join(parts)


class PlainRangeMixin:
    """Wagtail's range widgets (two dates, two numbers) written in Python.

    The markup of ``wagtailadmin/widgets/range_input.html`` around each input's
    ``date_input.html`` (its ``initDateChooser`` script) or ``number.html``, and Django's
    ``input.html`` and ``attrs.html``: five template renders an input, more than the rest
    of the filter. The values and attributes are Django's own (the widget's
    ``get_context``); only the templates' writing is done here, while the renderer's
    templates are the ones written (:func:`_range_templates_known`), else the widget is
    drawn by them.
    """

    template_name: str

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        renderer = renderer or get_default_renderer()
        if self.template_name != _RANGE or not _range_templates_known(renderer):
            return super().render(name, value, attrs, renderer)  # type: ignore[misc]
        context = self.get_context(name, value, attrs)  # type: ignore[attr-defined]
        parts = []
        for widget in context["widget"]["subwidgets"]:
            template_name = widget["template_name"]
            if template_name == _DATE_INPUT:
                element = escapejs(widget["attrs"].get("id", ""))
                parts.append(  # date.html: the input and its own line end
                    f'{_input_html(widget)}\n<script>initDateChooser("{element}", '
                    f"{widget['config_json']});</script>"
                )
            elif template_name in _INPUTS:  # the input and the template's line end
                parts.append(f"{_input_html(widget)}\n")
            else:  # another input: its own templates
                return super().render(name, value, attrs, renderer)  # type: ignore[misc]
        # Django's renderer strips what the template wrote.
        html = '<div class="w-flex w-flex-col w-gap-4">\n    ' + "".join(parts) + "\n</div>"
        return SafeString(html.strip())  # every value above went through escape_text or escapejs


class PlainDateRangeWidget(PlainRangeMixin, DateRangePickerWidget):
    """Wagtail's :class:`~wagtail.admin.filters.DateRangePickerWidget`, written in Python."""


class PlainNumberRangeWidget(PlainRangeMixin, NumberRangeWidget):
    """Wagtail's ``NumberRangeWidget``, written in Python (Wagtail 7.0's fallback, another
    template, is drawn by its template)."""


class PageFilter(django_filters.ChoiceFilter):
    """The "Page" filter: its choices (:func:`_page_choices`) are read once per list render,
    by :attr:`PaymentFilterSet.form`, into that render's own copy of the field.

    Django reads callable choices again at each use (validating the value, drawing the
    select, naming the active filter): three walks of the index a render when filtering.
    """

    @property
    def field(self) -> Any:
        if not hasattr(self, "_field"):
            self.extra["choices"] = []  # this render's, set on the form's copy of the field
        return super().field


class PaymentFilterSet(WagtailFilterSet):
    """The list's filters; their form class is built once per process, not on each render.

    django-filters builds a form class, with a new field and widgets for every filter, each
    time a list is drawn: a millisecond a render. The fields hold nothing of a request
    (labels are translated when drawn; the "Page" choices go into each form's own copy of
    its field), and a form copies its class's fields, so one class serves every render.
    """

    state = django_filters.ChoiceFilter(
        label=gettext_lazy("State"), choices=list(STATE_LABELS.items()), widget=PlainSelect
    )
    created_at = django_filters.DateFromToRangeFilter(
        label=gettext_lazy("Date"), widget=PlainDateRangeWidget
    )
    page = PageFilter(
        label=gettext_lazy("Page"), field_name="reference", choices=[], widget=PlainSelect
    )
    amount = django_filters.RangeFilter(label=gettext_lazy("Amount"), widget=PlainNumberRangeWidget)

    #: Form classes built so far, by the filters' names and the date format their date
    #: widgets were built with (``WAGTAIL_DATE_FORMAT``, read when a widget is made).
    _form_classes: ClassVar[dict[tuple[Any, ...], type]] = {}

    class Meta:
        model = WagtailPayment
        fields: ClassVar[list[Any]] = ["state", "created_at", "page", "amount"]

    def get_form_class(self) -> type:
        key = (type(self), *self.filters, getattr(settings, "WAGTAIL_DATE_FORMAT", None))
        form_class = self._form_classes.get(key)
        if form_class is None:
            form_class = self._form_classes[key] = super().get_form_class()
        return form_class

    @property
    def form(self) -> Any:
        if not hasattr(self, "_form"):
            form = super().form
            if "page" in form.fields:
                form.fields["page"].choices = _page_choices()
        return self._form


class PaymentIndexView(IndexedListMixin, IndexView):
    """The list and its CSV: labels people read, amounts as money, local times; counted
    and sorted through the index (see :class:`IndexedListMixin`).

    The CSV keeps amounts as plain numbers with the currency's decimals ("249.00", the
    currency in its own column) and times in the site's time zone, to the second.
    """

    export_headings = LABELS
    #: Wagtail's, saying "more than 10 000 matches" when the count stopped at the limit.
    results_template_name = "cmi_wagtail/admin/payment_results.html"
    #: The filters' fragments of Wagtail's results template: its own partial (7.1 and
    #: later), else this app's copy of what 7.0 writes inline.
    filter_partials = (
        "wagtailadmin/shared/listing/filter_partials.html",
        "cmi_wagtail/admin/filter_partials_wagtail70.html",
    )

    #: What the list's columns that are not model fields read of a payment.
    column_fields: ClassVar[dict[str, tuple[str, ...]]] = {
        "page_title": ("data",),
        "payer": ("data", "email"),
        "currency_alpha": ("currency",),
    }

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        fields = None if getattr(self, "is_export", False) else self.list_fields()
        return queryset if fields is None else queryset.only(*fields)

    def list_fields(self) -> list[str] | None:
        """The fields the page's statement reads: those its columns show (the currency
        with the amounts, the id for the links, the date for the order), not the 27 of a
        payment (the kept CMI request alone is a few dozen fields of JSON, decoded for
        nothing). None, every field, for a column this list does not know (a subclass's):
        reading a left-out field would cost a statement a row. The CSV reads every field.
        """
        known = {field.name for field in WagtailPayment._meta.concrete_fields}
        fields = {"id", "currency", "created_at"}
        for column in self.list_display:
            if isinstance(column, str) and column in known:
                fields.add(column)
            elif isinstance(column, str) and column in self.column_fields:
                fields.update(self.column_fields[column])
            else:
                return None
        return sorted(fields)

    def get_header_buttons(self) -> list[Any]:
        """Wagtail's header buttons, its "more" dropdown (the downloads) drawn once for
        its values (:func:`~cmi_wagtail.templatetags.cmi_wagtail_chrome.kept_dropdown`)."""
        return [kept_dropdown(button) for button in super().get_header_buttons()]

    def get_template_names(self) -> list[str]:
        """Wagtail's page, or the same page drawn through this app's chrome tags
        (:mod:`cmi_wagtail.templatetags.cmi_wagtail_chrome`: the sidebar's JSON and the
        keyboard dialog drawn once for their values) when the page would be Wagtail's own
        index template under Wagtail's own ``furniture`` block (:func:`chrome_in_use`):
        a site's template for this list, or its own ``furniture``, is used as it is."""
        names = list(super().get_template_names())
        if getattr(self, "results_only", False):
            return names
        chosen = select_template(names)
        origin = getattr(getattr(chosen, "template", None), "origin", None)
        if getattr(origin, "template_name", None) != WAGTAIL_INDEX:
            return names
        return [CHROME_TEMPLATE] if chrome_in_use(chosen.template.engine) else names

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if not getattr(self, "results_only", False):
            # The sidebar's explorer and reports items ask for it: one statement, not two.
            prime_explorable_root(self.request.user)
        context["cmi_filter_partials"] = self.filter_partials
        # The header :data:`CHROME_TEMPLATE`'s slim_header block includes (its filters'
        # drawer kept for its values: cmi_filters_drawer), or Wagtail's own.
        context["cmi_slim_header"] = slim_header_name(engines["django"].engine)  # type: ignore[attr-defined]
        if context.get("is_paginated"):  # Wagtail's pagination, in Python (_pagination_html)
            context["cmi_pagination"] = _pagination_html(
                self.request,
                context["page_obj"],
                context["elided_page_range"],
                resolve_url(self.index_url) if self.index_url else "",
            )
        return context

    def _get_title_column(self, field_name: str, column_class: Any = None, **kwargs: Any) -> Any:
        return super()._get_title_column(field_name, column_class or PlainTitleColumn, **kwargs)

    def _get_custom_column(self, field_name: str, column_class: Any = None, **kwargs: Any) -> Any:
        column = super()._get_custom_column(field_name, column_class or PlainColumn, **kwargs)
        if field_name in LABELS:
            column.label = LABELS[field_name]
        if field_name in _MONEY_FIELDS:
            column.accessor = lambda item, name=field_name: self._money(
                getattr(item, name), item.currency
            )
        elif field_name == "state":
            column.accessor = lambda item: state_label(item.state)
        return column

    @cached_property
    def _money_drawn(self) -> dict[tuple[Any, str], str]:
        """The amounts this render has formatted, by value and currency."""
        return {}

    def _money(self, amount: Any, currency: str) -> str:
        """An amount as the list shows it (:func:`~cmi_django.display.format_money`, whole
        in Arabic), formatted once a render for each value and currency: a page of
        payments for fixed-amount pages shows the same few amounts on every row, and
        Babel's formatting was the table's largest cost. Equal amounts (``Decimal``
        equality: ``250``, ``250.0`` and ``250.00``) format alike, with the currency's own
        decimals; the language is the render's."""
        key = (amount, currency)
        drawn = self._money_drawn.get(key)
        if drawn is None:
            drawn = self._money_drawn[key] = isolate(format_money(amount, currency))
        return drawn

    @cached_property
    def _inspect_url_parts(self) -> tuple[str, str] | None:
        """The detail's URL either side of the payment's id, reversed once a list (not once
        a row); None when the user may not open it (Wagtail's :meth:`get_inspect_url`)."""
        if not self.inspect_url_name or not self.user_has_any_permission(
            {"add", "change", "delete", "view"}
        ):
            return None
        head, marker, tail = reverse(self.inspect_url_name, args=(_URL_MARK,)).rpartition(
            str(_URL_MARK)
        )
        return (head, tail) if marker else None

    def get_inspect_url(self, instance: Any) -> str | None:
        parts = self._inspect_url_parts
        if parts is None:
            return super().get_inspect_url(instance)
        return f"{parts[0]}{quote(instance.pk)}{parts[1]}"

    def get_list_buttons(self, instance: Any) -> list[Any]:
        """None: the row's order id links to its detail, the one place a row leads (Wagtail's
        "more" menu would offer that same link again, at a third of the list's render time)."""
        return []

    def to_row_dict(self, item: Any) -> OrderedDict[str, Any]:
        row = super().to_row_dict(item)
        for name, value in row.items():
            if name in _MONEY_FIELDS and isinstance(value, Decimal):
                row[name] = money_for_csv(value, item.currency)
            elif isinstance(value, datetime.datetime):
                row[name] = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
            elif name == "state":
                row[name] = state_label(value)
        return row


class PaymentInspectView(InspectView):
    template_name = "cmi_wagtail/admin/payment_inspect.html"
    viewset: Any = None

    def get_field_label(self, field_name: str, field: Any) -> str:
        return str(LABELS.get(field_name) or super().get_field_label(field_name, field))

    def get_field_display_value(self, field_name: str, field: Any) -> Any:
        value = getattr(self.object, field_name, None)
        if field_name in _MONEY_FIELDS:  # drawn whole in Arabic ("MAD 150.00" otherwise)
            return isolate(format_money(value, self.object.currency))
        if field_name == "currency":
            return currency_code(str(value))
        if field_name == "state":
            return state_label(str(value))
        if field_name == "capture_mode":
            return _("manual (staff capture)") if value == "manual" else _("automatic")
        if field_name == "lang":  # the payer's language by its own name ("Français")
            names: dict[str, str] = dict(LANGUAGE_CHOICES)
            return names.get(str(value), value)
        if isinstance(value, datetime.datetime):
            return _local(value)  # the site's time zone, as in the list
        return super().get_field_display_value(field_name, field)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        payment: WagtailPayment = self.object
        context.update(action_context(payment))
        context.update(
            {
                "payment": payment,
                "currency": get_currency(payment.currency).alpha,
                "callbacks": payment.callbacks.order_by("created_at", "id"),
                "operations": payment.operations.order_by("created_at", "id"),
                "can_act": self.user_has_permission("change"),
                "action_urls": {
                    name: reverse(self.viewset.get_url_name("action"), args=[payment.pk, name])
                    for name in ACTIONS
                },
            }
        )
        return context


# CMI may be called: never inside ATOMIC_REQUESTS' transaction (docs/django-layer.md)
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class PaymentActionView(View):
    """POST ``action/<pk>/<capture|void|refund|refresh>/``: one staff operation, then back."""

    viewset: PaymentViewSet | None = None
    http_method_names = ("post",)

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        if self.viewset is None:
            raise ImproperlyConfigured("PaymentActionView is built by PaymentViewSet")
        policy = _permission_policy()
        if not policy.user_has_permission(request.user, "change"):
            raise PermissionDenied
        if action not in ACTIONS:
            raise Http404(action)
        payment = get_object_or_404(WagtailPayment, pk=pk)
        result = posted_staff_action(request, payment, action)
        if result.confirm:  # a void or a full refund: say what happens, ask first
            return TemplateResponse(
                request,
                "cmi_wagtail/admin/payment_confirm.html",
                {
                    "payment": payment,
                    "text": result.confirm,
                    "action": action,
                    "action_url": request.path,
                    "amount": request.POST.get("amount", ""),
                    "key": request.POST.get("key", ""),
                    "back_url": reverse(self.viewset.get_url_name("inspect"), args=[pk]),
                },
            )
        (messages.success if result.ok else messages.error)(request, result.message)
        return HttpResponseRedirect(reverse(self.viewset.get_url_name("inspect"), args=[pk]))


class PaymentViewSet(ModelViewSet):
    """Registered with ``@hooks.register("register_admin_viewset")`` in wagtail_hooks."""

    model = WagtailPayment
    name = "cmi_payments"
    icon = "form"
    menu_label = gettext_lazy("Payments")
    menu_order = 350
    add_to_admin_menu = True
    inspect_view_enabled = True
    inspect_view_class = PaymentInspectView
    index_view_class = PaymentIndexView
    copy_view_enabled = False
    list_display: ClassVar[list[Any]] = [
        "oid",
        "page_title",
        "payer",
        "amount",  # as money, with its currency code: no separate currency column
        "state",
        "created_at",
    ]
    list_export: ClassVar[list[Any]] = [
        "oid",
        "created_at",
        "state",
        "amount",
        "currency_alpha",
        "authorised_amount",
        "captured_amount",
        "refunded_amount",
        "page_title",
        "payer",
        "email",
        "lang",
        "trans_id",
        "auth_code",
        "masked_pan",
        "card_brand",
        "proc_return_code",
        "error_code",
    ]
    export_filename = "cmi-payments"
    filterset_class = PaymentFilterSet
    search_fields: ClassVar[list[Any]] = ["oid", "email", "trans_id", "reference"]
    search_backend_name = None
    ordering = "-created_at"
    inspect_view_fields: ClassVar[list[Any]] = [
        "oid",
        "state",
        "amount",
        "currency",
        "authorised_amount",
        "captured_amount",
        "refunded_amount",
        "capture_mode",
        "declined_attempts",
        "attention_reason",
        "email",
        "lang",
        "trans_id",
        "auth_code",
        "host_ref_num",
        "masked_pan",
        "card_brand",
        "proc_return_code",
        "error_code",
        "config_key",
        "created_at",
        "updated_at",
    ]

    def get_common_view_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        view_kwargs = super().get_common_view_kwargs(**kwargs)
        for name in (
            "add_url_name",
            "edit_url_name",
            "delete_url_name",
            "copy_url_name",
            "history_url_name",
            "usage_url_name",
        ):
            view_kwargs[name] = None
        return view_kwargs

    def get_inspect_view_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_inspect_view_kwargs(viewset=self, **kwargs)

    @property
    def action_view(self) -> Any:
        return self.construct_view(PaymentActionView, viewset=self)

    def get_urlpatterns(self) -> list[Any]:
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("inspect/<int:pk>/", self.inspect_view, name="inspect"),
            path("action/<int:pk>/<str:action>/", self.action_view, name="action"),
        ]
