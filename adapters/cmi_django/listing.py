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

Used by the Django admin (:mod:`cmi_django.admin`), Oscar's dashboard and Wagtail's admin.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.core.paginator import Paginator
from django.db import connections, models
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext

__all__ = ["BoundedPaginator", "distinct_values", "list_limit"]

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
