"""Staff payment lists that cost the same at a thousand payments and at a million.

A list page reads one range of an index (the payments' indexes: migration 0004) and
nothing that grows with the table:

- :class:`BoundedPaginator` counts the matching payments only up to
  ``CMI_STAFF_LIST_LIMIT`` (10,000 by default): ``SELECT COUNT(*)`` over a subquery with a
  ``LIMIT``, never over the whole table. Past the limit the list offers the newest
  payments and says there are more; filters (dates, state, page, order number) reach the
  older ones. Every page it offers is an index range of at most the limit's length.
- :func:`distinct_values` lists a column's distinct values (a filter's choices) by walking
  its index value to value, one ``ORDER BY ... LIMIT 1`` step per value, instead of a
  ``SELECT DISTINCT`` that reads every payment.

What the lists that draw their parts in Python share:

- :class:`KeptDrawings` keeps HTML a list has drawn (a filters' drawer, a navigation bar,
  a sidebar's JSON) by every value its drawing reads, at most a bound of them per
  process; :func:`clear_all` drops every store (a template changed under the development
  server, a test's reset).
- :func:`cell_text` writes a value as ``{{ value }}`` writes it (local time, localized,
  escaped), for the rows the lists write in Python; :func:`local_text` the same unescaped,
  :func:`escape_text` the escaping alone.

Used by the Django admin (:mod:`cmi_django.admin`), Oscar's dashboard and Wagtail's admin.
"""

from __future__ import annotations

import datetime
import html
import weakref
from collections.abc import Hashable, Iterator, Sized
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.core.paginator import Paginator
from django.db import connections, models
from django.utils import dateformat, formats
from django.utils.formats import localize, number_format
from django.utils.functional import Promise, cached_property
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]
from django.utils.translation import gettext

__all__ = [
    "BoundedPaginator",
    "KeptDrawings",
    "cell_text",
    "clear_all",
    "distinct_values",
    "escape_text",
    "list_limit",
    "local_text",
]

#: How many matching payments a staff list counts and pages through at most.
DEFAULT_LIMIT = 10_000
#: How many distinct values :func:`distinct_values` returns at most.
MAX_CHOICES = 500


def list_limit() -> int:
    """``CMI_STAFF_LIST_LIMIT`` (read when used), at least one page of 100."""
    return max(int(getattr(settings, "CMI_STAFF_LIST_LIMIT", DEFAULT_LIMIT)), 100)


class BoundedPaginator(Paginator):
    """A paginator whose count stops at :func:`list_limit`.

    :attr:`count` is the number of matches up to the limit, found by
    ``COUNT(*)`` over ``SELECT ... LIMIT limit + 1``; :attr:`truncated` tells that more
    matched. The pages cover the first ``count`` rows in the list's order.
    """

    @cached_property
    def _bounded(self) -> tuple[int, bool]:
        object_list: Any = self.object_list
        if not isinstance(object_list, models.QuerySet):
            return len(object_list), False
        limit = list_limit()
        # No sort and no annotation to count rows; the slice makes Django count a subquery.
        counted = object_list.order_by().values("pk")[: limit + 1].count()
        return min(counted, limit), counted > limit

    @cached_property
    def count(self) -> int:
        """Matching rows, at most :func:`list_limit`."""
        return self._bounded[0]

    @property
    def truncated(self) -> bool:
        """More rows match than the list counts and shows."""
        return self._bounded[1]

    @property
    def count_display(self) -> str:
        """:attr:`count`, its digits grouped as the active language groups them ("10 000")."""
        return str(number_format(self.count, force_grouping=True))

    @property
    def count_label(self) -> str:
        """The count as a list shows it: :attr:`count_display`, or "more than 10 000"
        ("plus de 10 000", "أكثر من 10.000") when it stopped at the limit, so that a list
        never claims that exactly the limit matched."""
        if self.truncated:
            return gettext("more than %(count)s") % {"count": self.count_display}
        return self.count_display


def distinct_values(
    queryset: models.QuerySet[Any], field: str, *, limit: int = MAX_CHOICES
) -> list[Any]:
    """The distinct non-empty values of text ``field`` among ``queryset``'s rows, in order.

    A loose index scan (a recursive query, each step the next greater value,
    ``ORDER BY field LIMIT 1``): with an index whose columns start with the queryset's
    equality filters and ``field``, it costs one index probe per distinct value, where
    ``SELECT DISTINCT`` reads every row. At most ``limit`` values.
    """
    model = queryset.model
    connection = connections[queryset.db]
    quote = connection.ops.quote_name
    column = quote(model._meta.get_field(field).column)
    table = quote(model._meta.db_table)
    query = queryset.order_by().query
    try:
        where_sql, where_params = query.get_compiler(connection=connection).compile(query.where)
    except FullResultSet:  # no filter
        where_sql, where_params = "", ()
    except EmptyResultSet:
        return []
    condition = f"({where_sql}) AND " if where_sql else ""
    # Identifiers quoted from the model's metadata; values as parameters (Django's compiler).
    select = f"SELECT {column} FROM {table} WHERE {condition}{column} > "  # noqa: S608
    order = f" ORDER BY {column} LIMIT 1"
    sql = (
        f"WITH RECURSIVE cmi_values(value) AS (SELECT ({select}%s{order}) UNION ALL "  # noqa: S608
        f"SELECT ({select}cmi_values.value{order}) FROM cmi_values "
        "WHERE cmi_values.value IS NOT NULL) "
        "SELECT value FROM cmi_values WHERE value IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*where_params, "", *where_params, limit])
        return [row[0] for row in cursor.fetchall()]


V = TypeVar("V", bound=Sized)

#: Every store made (held weakly: a store a test makes goes with it), for :func:`clear_all`.
_STORES: weakref.WeakSet[KeptDrawings[Any]] = weakref.WeakSet()


class KeptDrawings(Generic[V]):
    """Drawings kept in this process by key, at most :attr:`bound` of them.

    The contract:

    - :meth:`get` answers the value kept under ``key``, or None (never kept, or dropped
      since): the caller then draws it and hands it to :meth:`keep`. A key must hold every
      value the drawing reads (language, URLs, escaping, the user's outcomes...): the
      store knows nothing of what a drawing depends on, and answers whatever was kept.
    - :meth:`keep` keeps ``value`` under ``key`` and returns it. When :attr:`bound`
      values are already kept, all of them are dropped first (no bookkeeping of use on
      the pages' path: a store fills only when staff submit ever new values, and a
      dropped drawing is drawn again on its next page). A value longer than
      :attr:`largest` (``len``) is returned and not kept: its key (which holds what it
      was drawn from) and it would stay in memory for the process's life.
    - :meth:`clear` drops everything; :func:`clear_all` drops every store's.
    - Threads: each step is one or two dict operations under the GIL, as with the dicts
      this replaces. A clear racing a :meth:`get` makes a miss (drawn again); two threads
      keeping at the same instant may leave one value over the bound until the next
      keep; a key never answers another key's value.

    :attr:`bound` and :attr:`largest` may be changed on a store (tests do).
    """

    __slots__ = ("__weakref__", "_values", "bound", "largest")

    def __init__(self, bound: int, *, largest: int | None = None) -> None:
        self._values: dict[Hashable, V] = {}
        self.bound = bound
        self.largest = largest
        _STORES.add(self)

    def get(self, key: Hashable) -> V | None:
        """The value kept under ``key``, or None."""
        return self._values.get(key)

    def keep(self, key: Hashable, value: V) -> V:
        """``value``, kept under ``key`` unless longer than :attr:`largest` (see above)."""
        largest = self.largest
        if largest is not None and len(value) > largest:
            return value
        values = self._values
        if len(values) >= self.bound:
            values.clear()
        values[key] = value
        return value

    def clear(self) -> None:
        """Drop every value kept."""
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Hashable]:
        """The keys kept now (a copy: a page keeping meanwhile changes nothing here)."""
        return iter(list(self._values))


def clear_all() -> None:
    """Drop the values of every :class:`KeptDrawings` in this process."""
    for store in list(_STORES):
        store.clear()


def escape_text(value: Any) -> str:
    """Django's ``conditional_escape`` as text, without its steps (the lazy-text checks of
    ``escape`` and ``mark_safe`` cost more than the escaping of a short cell): safe text
    as it is, anything else through the standard library's ``html.escape``, which
    Django's ``escape`` calls."""
    if isinstance(value, Promise):
        value = str(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    return html.escape(str(value))


def local_text(value: Any, *, use_tz: bool | None = None, use_l10n: bool | None = None) -> str:
    """``{{ value }}``'s text before escaping, as Django's ``render_value_in_context``
    writes it: a date and time in the current time zone, dates and numbers in the active
    language's formats, anything else as ``str`` writes it (safe text stays safe).
    ``use_tz`` and ``use_l10n`` are the template context's (``{% localtime %}``,
    ``{% localize %}``); None follows the settings, as in a template outside those."""
    value = template_localtime(value, use_tz=use_tz)
    if isinstance(value, datetime.datetime):  # what localize does to one, without its tests
        return dateformat.format(value, formats.get_format("DATETIME_FORMAT", use_l10n=use_l10n))
    value = localize(value, use_l10n=use_l10n)
    return value if isinstance(value, str) else str(value)


def cell_text(value: Any, *, use_tz: bool | None = None, use_l10n: bool | None = None) -> str:
    """``{{ value }}`` as a template with autoescaping writes it: :func:`local_text`,
    escaped unless safe. Plain text goes straight to ``html.escape`` (what the template
    engine's steps come to for it)."""
    if type(value) is str:
        return html.escape(value)
    return escape_text(local_text(value, use_tz=use_tz, use_l10n=use_l10n))
