"""The configuration page inside a Dashboard stand-in, in a real browser (Debian Chromium).

Saleor's Dashboard (``AppFrame``) iframes the manifest's ``appUrl`` with ``?domain=``,
``saleorApiUrl``, ``id`` and ``theme`` and the sandbox ``allow-same-origin allow-forms
allow-scripts``; when the frame has loaded it posts ``{type: "handshake", payload: {token,
version: 1}}`` to the app's origin. The stand-in below does the same from its own origin
(``http://127.0.0.1:<port>``, a small HTTP server; the app is ``http://localhost:<port>``
in pytest-django's ``live_server``), so the handshake crosses origins as in production.
Then, as the Dashboard does (``DashboardEventFactory`` of ``@saleor/app-sdk``), it posts
``{type: "theme", payload: {theme}}`` and ``{type: "localeChanged", payload: {locale}}``,
again whenever its theme or language changes, and answers every action the app
dispatches (``{type, payload: {..., actionId}}``) with ``{type: "response", payload:
{actionId, ok: true}}``.
The token is a JWT signed by the Saleor stand-in's key (``standin.FakeSaleor``).

``page.route`` cannot serve the Dashboard: Chromium counts a routed page as public and its
Local Network Access checks then refuse to frame ``localhost``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_saleor.models import ChannelConfiguration
from django.db import connection
from django.test import Client

from tests.adapters.saleor.standin import FakeSaleor, _key

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sync_orm_beside_playwright"),
]

STRANGER_PAGE = "<!doctype html><title>another site</title>"
STORE_KEY = "Browser-Store-Key-0042"
API_PASSWORD = "Browser-Api-Password-77"


@dataclass
class Dashboard:
    """The Dashboard stand-in in ``page``: what it frames and which token it hands over."""

    page: Any
    app_url: str
    saleor: FakeSaleor
    origin: str  # the Dashboard's
    stranger_origin: str  # another site's, framed by the Dashboard beside the app
    token: str | None = None
    stranger: bool = False
    referrer: bool = True
    theme: str = "light"  # the Dashboard's own theme and language
    locale: str = "en"
    api_calls: list[dict[str, str]] = field(default_factory=list)

    def html(self) -> str:
        query = urlencode(
            {
                "domain": "saleor.example.com",
                "saleorApiUrl": self.saleor.api_url,
                "id": self.saleor.app_id,
                "theme": self.theme,
            }
        )
        policy = "" if self.referrer else ' referrerpolicy="no-referrer"'
        stranger = (
            f'<iframe name="stranger" src="{self.stranger_origin}/stranger"></iframe>'
            if self.stranger
            else ""
        )
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>Dashboard</title>
<script>
  var APP_ORIGIN = {json.dumps(self.app_url.split("/app")[0])};
  var TOKEN = {json.dumps(self.token)};
  var THEME = {json.dumps(self.theme)}, LOCALE = {json.dumps(self.locale)};
  window.fromApp = [];
  window.answered = [];
  function postToApp(message) {{
    document.getElementById("app").contentWindow.postMessage(message, APP_ORIGIN);
  }}
  window.addEventListener("message", function (event) {{
    if (event.origin !== APP_ORIGIN) return;
    window.fromApp.push(event.data);
    // an action (AppBridge.dispatch) is answered with its actionId, as the Dashboard does
    var id = event.data && event.data.payload && event.data.payload.actionId;
    if (id) {{
      postToApp({{type: "response", payload: {{actionId: id, ok: true}}}});
      window.answered.push(id);
    }}
  }});
  function setTheme(theme) {{ postToApp({{type: "theme", payload: {{theme: theme}}}}); }}
  function setLocale(locale) {{
    postToApp({{type: "localeChanged", payload: {{locale: locale}}}});
  }}
  function handshake(token) {{
    postToApp({{type: "handshake", payload: {{token: token, version: 1}}}});
    setTheme(THEME);
    setLocale(LOCALE);
  }}
  function appLoaded() {{ if (TOKEN) handshake(TOKEN); }}
</script></head><body>
<iframe id="app" name="app" src="{self.app_url}?{query}" onload="appLoaded()"{policy}
        style="width: 100%; height: 1100px; border: 0"
        sandbox="allow-same-origin allow-forms allow-scripts"></iframe>
{stranger}
</body></html>"""

    def open(
        self,
        token: str | None,
        *,
        stranger: bool = False,
        referrer: bool = True,
        theme: str = "light",
        locale: str = "en",
    ) -> Any:
        """Load the Dashboard's app page; the app's frame once it has loaded."""
        self.token, self.stranger, self.referrer = token, stranger, referrer
        self.theme, self.locale = theme, locale
        self.page.goto(f"{self.origin}/apps/{self.saleor.app_id}/app")
        frame = self.page.frame(name="app")
        assert frame is not None
        return frame


@pytest.fixture
def dashboard(
    page: Any,
    live_server: Any,
    settings: Any,
    *,
    client: Client,
    saleor: FakeSaleor,
    installation: Any,
) -> Iterator[Dashboard]:
    """The stand-in, serving the app's ``appUrl`` from the manifest, for an installed app."""
    settings.CMI_SALEOR_APP_URL = live_server.url
    app_url = client.get("/api/manifest").json()["appUrl"]  # what Saleor frames
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    shown = Dashboard(page, app_url, saleor, f"http://127.0.0.1:{port}", f"http://localhost:{port}")
    # The stand-in's origin is not the Saleor API's: allowed to frame the page (CSP).
    settings.CMI_SALEOR_DASHBOARD_ORIGINS = [shown.origin]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (STRANGER_PAGE if self.path == "/stranger" else shown.html()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def record(request: Any) -> None:
        if "/app/api/configuration" in request.url:
            shown.api_calls.append(request.headers)

    page.on("request", record)
    try:
        yield shown
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def row(frame: Any, channel: str) -> list[str]:
    cells = frame.locator("#channels tr", has_text=channel).first.locator("td")
    return [cells.nth(i).inner_text() for i in range(cells.count())]


def fill(frame: Any, **values: str) -> None:
    for name, value in values.items():
        if name in ("capture_mode", "environment", "lang"):
            frame.select_option(f"#{name}", value)
        else:
            frame.fill(f"#{name}", value)


def test_staff_configure_a_channel_in_the_dashboard(
    dashboard: Dashboard, saleor: FakeSaleor
) -> None:
    app = dashboard.open(saleor.dashboard_token())
    app.locator("#form").wait_for(state="visible")
    assert app.inner_text("#status") == f"Connected to {saleor.api_url}"
    assert app.locator("#channels tr").count() == 0
    assert dashboard.page.evaluate("window.fromApp.map(m => m.type)") == ["notifyReady"]
    fill(
        app,
        channel="default-channel",
        client_id="600000001",
        store_key=STORE_KEY,
        api_username="api-user",
        api_password=API_PASSWORD,
        capture_mode="manual",
        environment="production",
        lang="en",
    )
    app.click("button[type=submit]")
    app.locator("#channels tr", has_text="default-channel").wait_for()

    assert row(app, "default-channel") == [
        "default-channel",
        "yes",
        "600000001",
        "••••••••…42",
        "api-user",
        "••••••••…77",
        "manual (authorize)",  # the stored codes in words
        "production",
        "English",
    ]
    assert app.inner_text("#errors") == ""
    assert app.input_value("#store_key") == ""
    assert app.input_value("#api_password") == ""
    html = app.content()
    assert STORE_KEY not in html
    assert API_PASSWORD not in html
    stored = ChannelConfiguration.objects.get()
    assert (stored.channel, stored.client_id, stored.api_username) == (
        "default-channel",
        "600000001",
        "api-user",
    )
    assert (stored.capture_mode, stored.environment, stored.lang, stored.enabled) == (
        "manual",
        "production",
        "en",
        True,
    )
    assert (stored.store_key, stored.api_password) == (STORE_KEY, API_PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute("SELECT store_key, api_password FROM cmi_saleor_channelconfiguration")
        raw = " ".join(cursor.fetchone())
    assert STORE_KEY not in raw
    assert API_PASSWORD not in raw
    assert {c["authorization-bearer"] for c in dashboard.api_calls} == {dashboard.token}

    # a second visit shows what was saved; an edit without secrets keeps them
    app = dashboard.open(saleor.dashboard_token(email="other-staff@example.ma"))
    app.locator("#channels tr", has_text="default-channel").wait_for()
    assert row(app, "default-channel")[2:6] == [
        "600000001",
        "••••••••…42",
        "api-user",
        "••••••••…77",
    ]
    fill(app, channel="default-channel", client_id="600000001", api_username="api-user", lang="ar")
    app.click("button[type=submit]")
    app.locator("#channels tr", has_text="default-channel").filter(has_text="ar").wait_for()
    stored.refresh_from_db()
    assert (stored.lang, stored.store_key, stored.api_password) == ("ar", STORE_KEY, API_PASSWORD)
    assert STORE_KEY not in app.content()


def test_invalid_values_are_shown_and_not_saved(dashboard: Dashboard, saleor: FakeSaleor) -> None:
    app = dashboard.open(saleor.dashboard_token())
    app.locator("#form").wait_for(state="visible")
    fill(app, channel="default-channel", client_id="600000001", store_key="")
    app.click("button[type=submit]")
    app.locator("#errors", has_text="store key is required").wait_for()
    assert not ChannelConfiguration.objects.exists()


def forged(saleor: FakeSaleor) -> str:
    real_key = saleor.key
    saleor.key = _key(99)
    try:
        return saleor.dashboard_token()
    finally:
        saleor.key = real_key


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (forged, "Signature verification failed"),
        (lambda saleor: saleor.dashboard_token(exp=1), "expired"),
        (lambda saleor: saleor.dashboard_token(app="QXBwOjk5"), "not for this app"),
        (lambda saleor: saleor.dashboard_token(permissions=["MANAGE_ORDERS"]), "HANDLE_PAYMENTS"),
    ],
    ids=["other-key", "expired", "other-app", "no-permission"],
)
def test_refused_handshake_shows_no_form(
    dashboard: Dashboard, saleor: FakeSaleor, make_token: Any, reason: str
) -> None:
    app = dashboard.open(make_token(saleor))
    app.locator("#status", has_text=reason).wait_for()
    assert app.locator("#main").is_hidden()
    # un-hiding the form by hand does not help: the API refuses the token
    app.evaluate("document.getElementById('main').hidden = false")
    fill(app, channel="default-channel", client_id="600000001", store_key=STORE_KEY)
    app.click("button[type=submit]")
    app.locator("#errors", has_text="not authorised").wait_for()
    assert not ChannelConfiguration.objects.exists()


def test_handshake_from_another_origin_is_ignored(dashboard: Dashboard, saleor: FakeSaleor) -> None:
    app = dashboard.open(None, stranger=True)
    app.evaluate(
        "window.seen = [];"
        "window.addEventListener('message', function (e) { window.seen.push(e.origin); });"
    )
    intruder_token = saleor.dashboard_token(email="intruder@example.ma")
    stranger = dashboard.page.frame(name="stranger")
    stranger.evaluate(
        "token => parent.frames['app'].postMessage("
        "{type: 'handshake', payload: {token: token, version: 1}}, '*')",
        intruder_token,
    )
    app.wait_for_function(f"window.seen.includes({json.dumps(dashboard.stranger_origin)})")
    assert app.locator("#main").is_hidden()
    assert dashboard.api_calls == []

    token = saleor.dashboard_token()
    dashboard.page.evaluate("token => handshake(token)", token)
    app.locator("#form").wait_for(state="visible")
    assert [c["authorization-bearer"] for c in dashboard.api_calls] == [token]


def test_without_referrer_no_message_is_trusted(dashboard: Dashboard, saleor: FakeSaleor) -> None:
    app = dashboard.open(saleor.dashboard_token(), referrer=False)
    assert "no Referer" in app.inner_text("#status")
    app.evaluate(
        "window.seen = 0; window.addEventListener('message', function () { window.seen++; });"
    )
    dashboard.page.evaluate("token => handshake(token)", saleor.dashboard_token())
    app.wait_for_function("window.seen >= 2")  # the handshake and the theme
    assert app.locator("#main").is_hidden()
    assert dashboard.api_calls == []


def test_undecryptable_secrets_are_explained(
    dashboard: Dashboard, saleor: FakeSaleor, settings: Any
) -> None:
    """A key changed without its fallback: the page says which setting (HTTP 503, not a
    500 and a traceback), and shows no secret."""
    app = dashboard.open(saleor.dashboard_token())
    app.locator("#form").wait_for(state="visible")
    fill(app, channel="default-channel", client_id="600000001", store_key=STORE_KEY)
    app.click("button[type=submit]")
    app.locator("#channels tr", has_text="default-channel").wait_for()
    settings.CMI_ENCRYPTION_KEY = "not the key the secrets were saved with"
    fill(app, channel="other-channel", client_id="600000002", store_key=STORE_KEY)
    app.click("button[type=submit]")
    app.locator("#errors", has_text="CMI_ENCRYPTION_KEY_FALLBACKS").wait_for()

    app = dashboard.open(saleor.dashboard_token())
    app.locator("#status", has_text="CMI_ENCRYPTION_KEY_FALLBACKS").wait_for()
    assert app.locator("#main").is_hidden()
    assert STORE_KEY not in app.content()


def test_refreshed_token_is_used(dashboard: Dashboard, saleor: FakeSaleor) -> None:
    app = dashboard.open(saleor.dashboard_token(exp=int(time.time()) + 2))
    app.locator("#form").wait_for(state="visible")
    fresh = saleor.dashboard_token(email="staff+refreshed@example.ma")
    dashboard.page.evaluate(
        "token => postToApp({type: 'tokenRefresh', payload: {token: token}})", fresh
    )
    dashboard.page.wait_for_timeout(3000)  # the first token has expired
    fill(app, channel="default-channel", client_id="600000001", store_key=STORE_KEY)
    app.click("button[type=submit]")
    app.locator("#channels tr", has_text="default-channel").wait_for()
    assert dashboard.api_calls[-1]["authorization-bearer"] == fresh
    assert ChannelConfiguration.objects.get().store_key == STORE_KEY


def test_another_site_cannot_frame_the_page(
    dashboard: Dashboard, saleor: FakeSaleor, settings: Any
) -> None:
    """``frame-ancestors``: a site that is neither the registered Saleor's origin nor a
    configured Dashboard origin gets no page (Chromium shows its error page instead)."""
    settings.CMI_SALEOR_DASHBOARD_ORIGINS = None
    dashboard.token = saleor.dashboard_token()
    dashboard.page.goto(f"{dashboard.origin}/apps/{saleor.app_id}/app")
    dashboard.page.wait_for_timeout(1000)
    urls = [frame.url for frame in dashboard.page.frames]
    assert not any(url.startswith(dashboard.app_url) for url in urls), urls
    assert dashboard.api_calls == []


def background(frame: Any) -> str:
    return str(frame.evaluate("getComputedStyle(document.body).backgroundColor"))


def screenshot(dashboard: Dashboard, name: str, tmp_path: Path) -> Path:
    """The Dashboard page with the app, saved for a person to look at (also to
    ``$CMI_SCREENSHOTS`` when set)."""
    folder = Path(os.environ.get("CMI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"saleor-dashboard-{name}.png"
    dashboard.page.screenshot(path=str(path), full_page=True)
    return path


def test_the_page_follows_the_dashboard_theme_and_language(
    dashboard: Dashboard, saleor: FakeSaleor, tmp_path: Path
) -> None:
    """Dark French Dashboard: the page is dark and French; the Dashboard switches to light
    Arabic: the page follows without reloading (right to left)."""
    dashboard.page.set_viewport_size({"width": 1100, "height": 1200})
    app = dashboard.open(saleor.dashboard_token(), theme="dark", locale="fr")
    app.locator("#form").wait_for(state="visible")
    html = app.locator("html")
    assert html.get_attribute("data-theme") == "dark"
    assert background(app) == "rgb(27, 27, 31)"
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == ("fr", "ltr")
    assert app.inner_text("h2 >> nth=0") == "Canaux"
    assert app.inner_text("#status") == f"Connecté à {saleor.api_url}"
    assert app.inner_text("button[type=submit]") == "Enregistrer"
    # the choices in words, not the stored codes ("test", "fr")
    assert app.inner_text("#environment option[value=test]") == "plateforme de test"
    assert app.inner_text("#lang option[value=fr]") == "Français"
    assert screenshot(dashboard, "dark-fr", tmp_path).stat().st_size > 0

    dashboard.page.evaluate("setTheme('light'); setLocale('ar')")
    app.locator("html[dir=rtl]").wait_for(state="attached")
    assert html.get_attribute("data-theme") == "light"
    assert background(app) == "rgb(255, 255, 255)"
    assert html.get_attribute("lang") == "ar"
    assert app.inner_text("h2 >> nth=0") == "القنوات"
    assert app.inner_text("#status") == f"متصل بـ {saleor.api_url}"
    assert app.inner_text("#environment option[value=production]") == "الإنتاج"
    assert app.inner_text("#lang option[value=ar]") == "العربية"
    # right to left: the table's first column is at the right
    first = app.locator("th >> nth=0").bounding_box()
    last = app.locator("th >> nth=8").bounding_box()
    assert first is not None
    assert last is not None
    assert first["x"] > last["x"]
    assert screenshot(dashboard, "light-ar", tmp_path).stat().st_size > 0

    dashboard.page.evaluate("setTheme('dark'); setLocale('pt-BR')")  # not spoken: English
    app.locator("html[lang=en]").wait_for(state="attached")
    assert html.get_attribute("data-theme") == "dark"
    assert app.inner_text("h2 >> nth=0") == "Channels"
    dashboard.page.evaluate("setTheme('purple')")  # not a Dashboard theme: ignored
    assert html.get_attribute("data-theme") == "dark"


def test_the_page_starts_in_the_theme_of_its_url(
    dashboard: Dashboard, saleor: FakeSaleor, tmp_path: Path
) -> None:
    """Before any message (here: no token, so no handshake), the frame's ``?theme=`` decides,
    as AppBridge's initial state."""
    app = dashboard.open(None, theme="dark")
    app.locator("html[data-theme=dark]").wait_for(state="attached")
    assert background(app) == "rgb(27, 27, 31)"
    assert screenshot(dashboard, "dark-en-waiting", tmp_path).stat().st_size > 0


def test_ready_is_dispatched_as_app_bridge_does(dashboard: Dashboard, saleor: FakeSaleor) -> None:
    """``notifyReady`` carries a fresh ``actionId`` (AppBridge's ``dispatch``), which the
    Dashboard answers; other messages the app ignores change nothing."""
    app = dashboard.open(saleor.dashboard_token())
    app.locator("#form").wait_for(state="visible")
    sent = dashboard.page.evaluate("window.fromApp")
    assert [m["type"] for m in sent] == ["notifyReady"]
    action_id = sent[0]["payload"]["actionId"]
    assert len(action_id) == 36  # crypto.randomUUID()
    assert action_id.count("-") == 4
    assert dashboard.page.evaluate("window.answered") == [action_id]
    dashboard.page.evaluate(
        "postToApp({type: 'response', payload: {actionId: 'unknown', ok: false}})"
    )
    assert app.inner_text("#status") == f"Connected to {saleor.api_url}"
