"""Review of the Oscar list's kept navigation bar (review9): a bar kept for one staff
member is never shown to another whom Oscar would show other entries."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.listing import KeptDrawings
from cmi_oscar.dashboard import chrome
from django.test import Client

from tests.adapters.oscar.test_list_drawing import nav_of, page, superuser

pytestmark = pytest.mark.django_db
__all__ = ["superuser"]  # the fixture, used by name


def guest_and_owner(django_user_model: Any) -> dict[str, Client]:
    """Two superusers, logged in: "guest" (first name "guest") and "owner" (none)."""
    clients = {}
    for name, first in (("guest", "guest"), ("owner", "")):
        user = django_user_model.objects.create_superuser(name, f"{name}@example.ma", "pw")
        user.first_name = first
        user.save()
        clients[name] = Client()
        clients[name].force_login(user)
    return clients


def test_a_forked_dashboards_own_node_keeps_oscars_bar(
    settings: Any, monkeypatch: Any, django_user_model: Any
) -> None:
    """A site that forks Oscar's dashboard app with a ``nav.py`` of its own (its ``Node``,
    which ``menu.py`` loads through ``get_class``) may show an entry by anything (here a
    user attribute), not only by its permissions. The kept bar was keyed by the
    permissions' outcomes only: a second superuser got the first one's entries."""
    from oscar.apps.dashboard import menu

    class Node(menu.Node):  # type: ignore[name-defined,misc]
        def is_visible(self, user: Any) -> bool:
            if self.label == "Guests only":
                return bool(user.first_name == "guest")
            return bool(super().is_visible(user))

    settings.OSCAR_DASHBOARD_NAVIGATION = [
        *settings.OSCAR_DASHBOARD_NAVIGATION,
        {"label": "Guests only", "url_name": "cmi_oscar_dashboard:cmi-payment-list"},
    ]
    monkeypatch.setattr(menu, "Node", Node)
    chrome._code_is_known.cache_clear()
    monkeypatch.setattr(chrome, "_drawn", KeptDrawings(chrome._KEPT))
    try:
        clients = guest_and_owner(django_user_model)
        assert "Guests only" in nav_of(page(clients["guest"], {}, "en", True))
        assert "Guests only" not in nav_of(page(clients["owner"], {}, "en", True))
    finally:
        monkeypatch.undo()
        chrome._code_is_known.cache_clear()


def test_a_sites_own_dashboard_tags_keep_oscars_bar(
    settings: Any, monkeypatch: Any, django_user_model: Any
) -> None:
    """A site's app with a ``templatetags/dashboard_tags.py`` of its own replaces Oscar's
    library for ``{% load dashboard_tags %}``, and its ``dashboard_navigation`` may show
    an entry by anything of the user. The kept bar checked Oscar's module, not the
    library the engine loads: a second superuser got the first one's entries."""
    from django import template
    from django.template import engines
    from oscar.apps.dashboard.menu import get_nodes

    library = template.Library()

    @library.simple_tag
    def dashboard_navigation(user: Any) -> Any:
        nodes = get_nodes(user)
        if user.first_name == "guest":
            return nodes
        return [node for node in nodes if node.label != "Guests only"]

    engine = engines["django"].engine  # type: ignore[attr-defined]
    monkeypatch.setitem(engine.template_libraries, "dashboard_tags", library)
    monkeypatch.setattr(chrome, "_menus", KeptDrawings(chrome._KEPT))
    _forget_compiled(engine)  # templates compiled before load Oscar's library
    settings.OSCAR_DASHBOARD_NAVIGATION = [
        *settings.OSCAR_DASHBOARD_NAVIGATION,
        {"label": "Guests only", "url_name": "cmi_oscar_dashboard:cmi-payment-list"},
    ]
    monkeypatch.setattr(chrome, "_drawn", KeptDrawings(chrome._KEPT))
    clients = guest_and_owner(django_user_model)
    try:
        assert "Guests only" in nav_of(page(clients["guest"], {}, "en", True))
        assert "Guests only" not in nav_of(page(clients["owner"], {}, "en", True))
    finally:
        monkeypatch.undo()
        _forget_compiled(engine)


def _forget_compiled(engine: Any) -> None:
    for loader in engine.template_loaders:
        if hasattr(loader, "reset"):
            loader.reset()


def test_a_default_access_function_set_later_keeps_oscars_bar(
    superuser: Any, settings: Any
) -> None:
    """The menu's guard (the settings' default access function is Oscar's) was kept by the
    layout, the menu list and the URL configuration only: a default access function set
    afterwards (``override_settings`` in a site's tests, the same menu list) was ignored,
    and the kept bar showed every entry Oscar's function would."""
    from django.contrib.auth import get_user_model

    boss = get_user_model().objects.get(username="boss")
    assert chrome.navigation(boss) is not None
    settings.OSCAR_DASHBOARD_DEFAULT_ACCESS_FUNCTION = (
        "tests.adapters.oscar.test_list_drawing.nobody"
    )
    assert chrome.navigation(boss) is None
    html = page(superuser, {}, "en", True)
    assert "/dashboard/catalogue/" not in nav_of(html)  # Oscar's menu: nobody sees an entry


def test_a_navigation_block_edited_while_the_server_runs_is_drawn(
    superuser: Any, settings: Any, tmp_path: Any
) -> None:
    """``runserver`` does not restart for a template (Django's autoreloader resets the
    template loaders). A site's ``layout.html`` whose ``dashboard_nav`` block was Oscar's
    text kept its compiled block and drawings for the process's life: the block edited
    while the server ran was never drawn."""
    from pathlib import Path

    import django.template.autoreload  # noqa: F401 (connects Django's receiver, as runserver does)
    import oscar
    from django.utils.autoreload import file_changed

    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [str(tmp_path), *engine.get("DIRS", [])]}]
    oscars = Path(oscar.__file__).parent / "templates" / chrome.LAYOUT
    path = tmp_path / chrome.LAYOUT
    path.parent.mkdir(parents=True)
    source = oscars.read_text(encoding="utf-8")
    path.write_text(source, encoding="utf-8")
    assert "SITE NAV" not in page(superuser, {}, "en", True)
    assert [key for key in chrome._menus if key[0] == str(path)]  # the site's copy: kept
    path.write_text(
        source.replace("{% block dashboard_nav %}", "{% block dashboard_nav %}SITE NAV", 1),
        encoding="utf-8",
    )
    file_changed.send(sender=None, file_path=path)
    assert "SITE NAV" in page(superuser, {}, "en", True)


def test_a_changed_template_drops_every_kept_drawing(superuser: Client) -> None:
    """The bar's compiled block and drawing and the filters' drawing are all dropped when
    a template changes under the development server, and none when Python code does (the
    server restarts): the three stores are the shared kind :func:`clear_all` reaches."""
    from pathlib import Path

    from cmi_oscar.dashboard import views
    from django.utils.autoreload import file_changed

    stores = (chrome._menus, chrome._drawn, views._drawn_filters)
    assert all(isinstance(store, KeptDrawings) for store in stores)
    page(superuser, {"state": "captured"}, "en", True)
    assert all(len(store) for store in stores)
    file_changed.send(sender=None, file_path=Path("views.py"))
    assert all(len(store) for store in stores)
    file_changed.send(sender=None, file_path=Path("layout.html"))
    assert [len(store) for store in stores] == [0, 0, 0]
