"""The payments list's admin chrome (issue 16, goal 4): Wagtail's page, its sidebar JSON and
keyboard dialog drawn once for their values (``cmi_wagtail.templatetags.cmi_wagtail_chrome``).

Each page drawn through the chrome is compared with the page Wagtail's own template draws
for the same request (CSRF tokens aside): staff see the same page, whatever their
permissions, language or keyboard, and a permission granted shows on the next page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cmi_wagtail import viewsets
from cmi_wagtail.templatetags import cmi_wagtail_chrome as chrome
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext_lazy
from wagtail.users.models import UserProfile

from tests.adapters.staff_lists import fill

pytestmark = pytest.mark.django_db

INDEX = "/admin/cmi_payments/"
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)"
LINUX = "Mozilla/5.0 (X11; Linux x86_64)"


@pytest.fixture(autouse=True)
def nothing_kept() -> Iterator[None]:
    chrome._KEPT.clear()
    yield
    chrome._KEPT.clear()


@pytest.fixture
def boss(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.ma", "pw")


@pytest.fixture
def copied() -> None:
    """Skip where this Wagtail's furniture block is not the one the app copied (then the
    list is Wagtail's page as it is, which the other tests check): say so in the run."""
    from django.template import engines

    engine = engines["django"].engine  # type: ignore[attr-defined]
    wagtails = engine.get_template(chrome.WAGTAIL_BASE).source
    ours = engine.get_template(chrome.CHROME_TEMPLATE).source
    if chrome.wagtail_furniture_as_copied(wagtails) not in ours:
        pytest.skip("this Wagtail's base.html furniture differs from the app's copy")


def clerk(django_user_model: Any, name: str = "clerk") -> Any:
    """Staff who may open the admin and view payments, nothing else."""
    user = django_user_model.objects.create_user(name, f"{name}@example.ma", "pw")
    user.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_wagtailpayment"),
    )
    return user


def page(user: Any, *, chrome_on: bool, agent: str = LINUX, url: str = INDEX) -> tuple[str, Any]:
    """The list as ``user`` sees it (CSRF tokens masked), drawn through the chrome or by
    Wagtail's own template; and the response."""
    saved = viewsets.chrome_in_use
    if not chrome_on:
        viewsets.chrome_in_use = lambda engine: False  # type: ignore[assignment]
    try:
        client = Client(HTTP_USER_AGENT=agent)
        client.force_login(user)
        response = client.get(url)
    finally:
        viewsets.chrome_in_use = saved
    assert response.status_code == 200
    html = response.content.decode()
    html = re.sub(r'(csrfmiddlewaretoken" value="|"CSRF_TOKEN": ")[^"]+', r"\1-", html)
    return html, response


def sidebar(html: str) -> dict[str, Any]:
    found = re.search(
        r'<script id="wagtail-sidebar-props" type="application/json">(.*?)</script>', html
    )
    assert found
    return dict(json.loads(found.group(1)))


def menu_names(html: str) -> set[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "name" and isinstance(value, str):
                    names.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(sidebar(html))
    return names


def test_the_list_is_drawn_through_the_chrome(boss: Any, copied: None) -> None:
    html, response = page(boss, chrome_on=True)
    assert chrome.CHROME_TEMPLATE in [t.name for t in response.templates]
    assert chrome.chrome_in_use(response.templates[0].engine)
    assert html.count('id="wagtail-sidebar-props"') == 1
    assert html.count('id="keyboard-shortcuts-dialog"') == 1


@pytest.mark.parametrize("language", ["fr", "en", "ar"])
@pytest.mark.parametrize("agent", [LINUX, MAC])
def test_the_page_is_wagtails_page(
    boss: Any, django_user_model: Any, language: str, agent: str
) -> None:
    fill(3, platform="wagtail", reference="11", title="Adhésion")
    staff = clerk(django_user_model)
    for user in (boss, staff):
        UserProfile.get_for_user(user).__class__.objects.filter(user=user).update(
            preferred_language=language
        )
        for _ in range(2):  # the first draws and keeps, the second reads what was kept
            ours, _response = page(user, chrome_on=True, agent=agent)
            wagtails, _response = page(user, chrome_on=False, agent=agent)
            assert ours == wagtails
        assert f'lang="{language}"' in ours
    assert ('dir="rtl"' in ours) == (language == "ar")
    assert ("⌘" in ours) == (agent == MAC)


def test_keyboard_shortcuts_turned_off_show_on_the_next_page(boss: Any, copied: None) -> None:
    page(boss, chrome_on=True)
    profile = UserProfile.get_for_user(boss)
    profile.keyboard_shortcuts = False
    profile.save()
    ours, _response = page(boss, chrome_on=True)
    assert ours == page(boss, chrome_on=False)[0]
    assert "Keyboard shortcuts are currently disabled" in ours or "désactivés" in ours


def test_comments_turned_off_show_on_the_next_page(boss: Any, settings: Any) -> None:
    with_comments = page(boss, chrome_on=True)[0]
    settings.WAGTAILADMIN_COMMENTS_ENABLED = False
    without = page(boss, chrome_on=True)[0]
    assert without == page(boss, chrome_on=False)[0]
    assert without != with_comments  # the dialog's "comments" shortcut is gone


def test_a_permission_granted_shows_on_the_next_page_and_only_for_that_user(
    django_user_model: Any,
) -> None:
    first, second = clerk(django_user_model, "first"), clerk(django_user_model, "second")
    before = page(first, chrome_on=True)[0]
    assert "users" not in menu_names(before)
    first.user_permissions.add(Permission.objects.get(codename="add_user"))
    first = django_user_model.objects.get(pk=first.pk)  # permissions are cached per object
    granted = page(first, chrome_on=True)[0]
    assert "users" in menu_names(granted)
    assert granted == page(first, chrome_on=False)[0]
    other = page(second, chrome_on=True)[0]
    assert "users" not in menu_names(other)
    assert other == page(second, chrome_on=False)[0]
    assert sidebar(other) != sidebar(granted)


def test_the_sidebar_is_packed_once_for_its_values(
    boss: Any, monkeypatch: Any, copied: None
) -> None:
    from wagtail.admin.telepath import JSContext  # Wagtail 7.1 on (``copied`` skips before)

    packed: list[Any] = []
    pack = JSContext.pack

    def counting(self: Any, value: Any) -> Any:
        packed.append(value)
        return pack(self, value)

    monkeypatch.setattr(JSContext, "pack", counting)
    first = page(boss, chrome_on=True)[0]
    assert len(packed) == 1
    assert page(boss, chrome_on=True)[0] == first
    assert len(packed) == 1  # the second page's menu had the same values: its JSON kept
    page(boss, chrome_on=False)
    assert len(packed) == 2  # Wagtail's own tag packs every time


def test_sidebar_key_tells_apart_what_telepath_writes_apart() -> None:
    pytest.importorskip("wagtail.admin.telepath", reason="Wagtail 7.0: the copy is not used")
    shared = {"a": 1}
    assert chrome.sidebar_key([1]) != chrome.sidebar_key([True])
    assert chrome.sidebar_key([1]) != chrome.sidebar_key([1.0])
    with translation.override("fr"):  # lazy text as its translation
        assert chrome.sidebar_key([gettext_lazy("Account")]) == chrome.sidebar_key(["Compte"])
    # the same object twice is written as a reference, two equal objects are not
    assert chrome.sidebar_key([shared, shared]) != chrome.sidebar_key([{"a": 1}, {"a": 1}])
    assert chrome.sidebar_key({"a": 1, "b": 2}) != chrome.sidebar_key({"b": 2, "a": 1})
    with pytest.raises(chrome.Unkeyable):
        chrome.sidebar_key([object()])


def site_base(settings: Any, tmp_path: Any, blocks: str) -> None:
    """A site's own ``wagtailadmin/base.html``, extending Wagtail's with ``blocks``."""
    folder = tmp_path / "wagtailadmin"
    folder.mkdir()
    (folder / "base.html").write_text('{% extends "wagtailadmin/base.html" %}' + blocks)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]


def test_a_site_that_overrides_the_furniture_keeps_wagtails_page(
    boss: Any, settings: Any, tmp_path: Any
) -> None:
    site_base(
        settings,
        tmp_path,
        "{% block furniture %}<p id='site-furniture'>ours</p>{{ block.super }}{% endblock %}",
    )
    html, response = page(boss, chrome_on=True)
    assert "site-furniture" in html
    assert chrome.CHROME_TEMPLATE not in [t.name for t in response.templates]


def test_a_site_branding_logo_is_drawn(
    boss: Any, settings: Any, tmp_path: Any, copied: None
) -> None:
    site_base(settings, tmp_path, "{% block branding_logo %}<img id='site-logo'>{% endblock %}")
    html, response = page(boss, chrome_on=True)
    assert chrome.CHROME_TEMPLATE in [t.name for t in response.templates]
    assert "<img id='site-logo'>" in html
    assert html == page(boss, chrome_on=False)[0]


def test_kept_drawings_are_bounded(boss: Any, monkeypatch: Any) -> None:
    """Any number of distinct menus (users, languages) keeps at most MAX_KEPT drawings."""
    monkeypatch.setattr(chrome, "MAX_KEPT", 3)
    for number in range(10):
        boss.first_name = f"Boss {number}"  # the sidebar shows the name: a new key each time
        boss.save()
        html = page(boss, chrome_on=True)[0]
        assert f"Boss {number}" in html
        assert len(chrome._KEPT) <= 3
