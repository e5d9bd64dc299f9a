"""The payments list's admin chrome (issue 16, goal 4): Wagtail's page, its sidebar JSON and
keyboard dialog drawn once for their values (``cmi_wagtail.templatetags.cmi_wagtail_chrome``).

Each page drawn through the chrome is compared with the page Wagtail's own template draws
for the same request (CSRF tokens aside): staff see the same page, whatever their
permissions, language or keyboard, and a permission granted shows on the next page.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cmi_wagtail import viewsets
from cmi_wagtail.templatetags import cmi_wagtail_chrome as chrome
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext_lazy
from wagtail import VERSION as WAGTAIL_VERSION
from wagtail.users.models import UserProfile

from tests.adapters.staff_lists import fill

pytestmark = pytest.mark.django_db
#: The header's dropdown is kept only while its templates are Wagtail 8's (on 7.0
#: Wagtail's own drawing runs every time).
needs_wagtail_8 = pytest.mark.skipif(
    WAGTAIL_VERSION[:2] < (8, 0), reason="Wagtail 7: its own dropdown is drawn"
)

INDEX = "/admin/cmi_payments/"
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)"
LINUX = "Mozilla/5.0 (X11; Linux x86_64)"


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
    admin_base = engine.get_template(chrome.WAGTAIL_ADMIN_BASE).source
    if (chrome.wagtail_js_as_copied(admin_base) or "-") not in ours:
        pytest.skip("this Wagtail's admin_base.html js block differs from the app's copy")


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
    saved, saved_dropdown = viewsets.chrome_in_use, viewsets.kept_dropdown
    if not chrome_on:
        viewsets.chrome_in_use = lambda engine: False  # type: ignore[assignment]
        viewsets.kept_dropdown = lambda dropdown: dropdown
    try:
        client = Client(HTTP_USER_AGENT=agent)
        client.force_login(user)
        response = client.get(url)
    finally:
        viewsets.chrome_in_use, viewsets.kept_dropdown = saved, saved_dropdown
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
    monkeypatch.setattr(chrome._KEPT, "bound", 3)
    for number in range(10):
        boss.first_name = f"Boss {number}"  # the sidebar shows the name: a new key each time
        boss.save()
        html = page(boss, chrome_on=True)[0]
        assert f"Boss {number}" in html
        assert len(chrome._KEPT) <= 3


def test_the_config_script_is_written_once_for_its_fixed_parts(
    boss: Any, monkeypatch: Any, copied: None
) -> None:
    """Wagtail's strings for the scripts are read once a language; the page is Wagtail's."""
    from wagtail.admin.templatetags import wagtailadmin_tags

    read: list[str] = []
    strings = wagtailadmin_tags.get_js_translation_strings

    def counting() -> Any:
        read.append(translation.get_language())
        return strings()

    monkeypatch.setattr(wagtailadmin_tags, "get_js_translation_strings", counting)
    first = page(boss, chrome_on=True)[0]
    assert page(boss, chrome_on=True)[0] == first
    assert len(read) == 1
    assert first == page(boss, chrome_on=False)[0]
    assert len(read) == 2  # Wagtail's own tag reads them every time
    assert first.count('<script id="wagtail-config" type="application/json">') == 1


@pytest.mark.parametrize("language", ["fr", "en", "ar"])
def test_the_config_script_is_wagtails_script(
    boss: Any, rf: Any, settings: Any, language: str, copied: None
) -> None:
    """The tag against Wagtail's two lines, byte for byte (CSRF tokens aside), with a
    content locale, several locales (their names with characters the script escapes),
    keyboard shortcuts off, and i18n on then off."""
    from django.template import engines
    from wagtail.models import Locale

    settings.WAGTAIL_CONTENT_LANGUAGES = [("fr", "Français <&>"), ("ar", "العربية"), ("en", "En")]
    for code in ("fr", "ar"):
        Locale.objects.get_or_create(language_code=code)
    profile = UserProfile.get_for_user(boss)
    profile.keyboard_shortcuts = False
    profile.save()
    drawn = engines["django"].from_string(
        "{% load wagtailadmin_tags cmi_wagtail_chrome %}"
        '{% wagtail_config as config %}{{ config|json_script:"wagtail-config" }}|'
        "{% cmi_wagtail_config %}"
    )
    request = rf.get(INDEX)
    request.user = type(boss).objects.get(pk=boss.pk)
    with translation.override(language):
        for i18n in (True, False):
            settings.WAGTAIL_I18N_ENABLED = i18n
            for context in ({}, {"locale": Locale.objects.get(language_code="ar")}):
                for _ in range(2):  # drawn, then from what was kept
                    html = drawn.render({**context}, request)
                    html = re.sub(r'("CSRF_TOKEN": ")[^"]+', r"\1-", html)
                    wagtails, ours = html.split("|")
                    assert ours == wagtails
                    config = json.loads(re.sub(r"^<script[^>]*>|</script>$", "", ours))
                    assert config["I18N_ENABLED"] is i18n
                    assert config["KEYBOARD_SHORTCUTS_ENABLED"] is False
                    assert ("ACTIVE_CONTENT_LOCALE" in config) == bool(context)
                    assert "\\u003C&" not in ours
                    assert "\\u003C\\u0026\\u003E" in ours


def site_admin_base(settings: Any, tmp_path: Any, name: str, blocks: str) -> None:
    """A site's own template ``name``, extending Wagtail's with ``blocks``."""
    folder = tmp_path / "wagtailadmin"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text('{% extends "wagtailadmin/' + name + '" %}' + blocks)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]


def test_a_site_that_overrides_the_js_block_keeps_wagtails_page(
    boss: Any, settings: Any, tmp_path: Any
) -> None:
    site_admin_base(
        settings,
        tmp_path,
        "admin_base.html",
        "{% block js %}<script id='site-js'></script>{{ block.super }}{% endblock %}",
    )
    html, response = page(boss, chrome_on=True)
    assert "<script id='site-js'></script>" in html
    assert chrome.CHROME_TEMPLATE not in [t.name for t in response.templates]
    assert html.count('id="wagtail-config"') == 1


def test_a_site_extra_js_that_reads_the_config_keeps_wagtails_page(
    boss: Any, settings: Any, tmp_path: Any
) -> None:
    """Wagtail's block leaves ``config`` for the ``extra_js`` drawn inside it."""
    site_admin_base(
        settings,
        tmp_path,
        "base.html",
        "{% block extra_js %}{{ block.super }}<b id='site-cfg'>"
        "{{ config.ADMIN_URLS.PAGES }}</b>{% endblock %}",
    )
    html, response = page(boss, chrome_on=True)
    assert "<b id='site-cfg'>/admin/pages/</b>" in html
    assert chrome.CHROME_TEMPLATE not in [t.name for t in response.templates]


def test_a_site_extra_js_is_drawn_through_the_chrome(
    boss: Any, settings: Any, tmp_path: Any, copied: None
) -> None:
    site_admin_base(
        settings, tmp_path, "base.html", "{% block extra_js %}<b id='site-js'></b>{% endblock %}"
    )
    html, response = page(boss, chrome_on=True)
    assert chrome.CHROME_TEMPLATE in [t.name for t in response.templates]
    assert "<b id='site-js'></b>" in html
    assert html == page(boss, chrome_on=False)[0]


@needs_wagtail_8
@pytest.mark.parametrize("language", ["fr", "en", "ar"])
def test_the_header_dropdown_is_drawn_once_for_its_values(
    boss: Any, monkeypatch: Any, language: str
) -> None:
    """The "more" dropdown (the downloads) is Wagtail's, with filters set or not, drawn
    once for each set of values: a filter changes its links, so it is drawn again."""
    from wagtail.admin.widgets.button import ButtonWithDropdown

    fill(3, platform="wagtail", reference="12", title="Adhésion")
    UserProfile.get_for_user(boss).__class__.objects.filter(user=boss).update(
        preferred_language=language
    )
    drawn: list[Any] = []
    draw = ButtonWithDropdown.render_html

    def counting(self: Any, parent_context: Any = None) -> Any:
        drawn.append(self)
        return draw(self, parent_context)

    monkeypatch.setattr(ButtonWithDropdown, "render_html", counting)
    filtered = INDEX + "?state=captured"
    for _ in range(2):
        for url in (INDEX, filtered):
            ours = page(boss, chrome_on=True, url=url)[0]
            assert ours == page(boss, chrome_on=False, url=url)[0]
            assert ("state=captured&amp;export=csv" in ours) == (url == filtered)
    # Wagtail's draws on each of its four pages; ours once for each URL's values
    assert len(drawn) == 4 + 2


@needs_wagtail_8
def test_a_site_button_template_draws_the_dropdown_on_every_page(
    boss: Any, settings: Any, tmp_path: Any
) -> None:
    """A site's own ``button.html`` is not the template read: nothing is kept."""
    folder = tmp_path / "wagtailadmin" / "shared"
    folder.mkdir(parents=True)
    (folder / "button.html").write_text("<a id='site-button' href='{{ button.url }}'></a>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    first = page(boss, chrome_on=True)[0]
    assert "<a id='site-button' href='/admin/cmi_payments/?export=csv'></a>" in first
    assert not [key for key in chrome._KEPT if key[0] == "dropdown"]
    assert page(boss, chrome_on=True)[0] == first == page(boss, chrome_on=False)[0]


def test_the_config_script_carries_each_requests_own_csrf_token(
    boss: Any, django_user_model: Any, copied: None
) -> None:
    """The token is never among the kept parts: each browser's script holds its own."""
    from django.middleware.csrf import _unmask_cipher_token

    secrets = []
    for user in (boss, clerk(django_user_model)):
        client = Client()
        client.force_login(user)
        html = client.get(INDEX).content.decode()
        token = re.search(r'"CSRF_TOKEN": "([^"]+)"', html)
        assert token
        secret = _unmask_cipher_token(token.group(1))
        assert secret == client.cookies["csrftoken"].value
        secrets.append(secret)
    assert secrets[0] != secrets[1]
