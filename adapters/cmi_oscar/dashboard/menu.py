"""The CMI entry of Oscar's dashboard menu, its label in the staff member's language.

Settings import it (it needs nothing but ``gettext_lazy``)::

    from cmi_oscar.dashboard.menu import NAVIGATION_ENTRY

    OSCAR_DASHBOARD_NAVIGATION = [*OSCAR_DASHBOARD_NAVIGATION, NAVIGATION_ENTRY]

A plain ``"label": "CMI payments"`` stays English in French and Arabic: the string must
be lazy and in a catalogue Oscar's sites load, this app's.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

__all__ = ["NAVIGATION_ENTRY"]

#: An ``OSCAR_DASHBOARD_NAVIGATION`` item: the list of CMI payments, for staff.
NAVIGATION_ENTRY: dict[str, Any] = {
    "label": _("CMI payments"),
    "icon": "fas fa-credit-card",
    "url_name": "cmi_oscar_dashboard:cmi-payment-list",
}
