"""Defaults that fail closed (issue #11, item 5): allow-lists, system checks, framing.

- ``CMI_SALEOR_ALLOWED_API_URLS`` / ``CMI_SALEOR_ALLOWED_RETURN_HOSTS`` unset allowed any
  Saleor to install the app and any ``returnUrl`` (a verified okUrl POST answered
  ``303 https://evil.example/...``); now they refuse, unless ``CMI_SALEOR_DEMO = True``,
  and ``manage.py check`` fails.
- The Dashboard page may be framed only by the registered Saleor's origin (CSP).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_saleor.models import SaleorInstallation
from django.core import checks
from django.test import Client

from tests.adapters.saleor.conftest import register, send
from tests.adapters.saleor.standin import FakeSaleor, new_transaction, session_payload

pytestmark = pytest.mark.django_db

INIT = "TRANSACTION_INITIALIZE_SESSION"
ROOT = Path(__file__).resolve().parents[3]


def ids(**kwargs: Any) -> set[str]:
    return {m.id for m in checks.run_checks(**kwargs) if m.id}


# -- allow-lists ---------------------------------------------------------------------------


def test_unset_api_url_allow_list_refuses_every_installation(
    client: Client, saleor: FakeSaleor, settings: Any
) -> None:
    del settings.CMI_SALEOR_ALLOWED_API_URLS
    response = register(client, saleor)
    assert response.status_code == 403
    assert not SaleorInstallation.objects.exists()
    assert saleor.calls == []  # nothing sent where the header points (no blind SSRF)


def test_unset_return_hosts_refuse_every_return_url(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    del settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS
    payload = session_payload(INIT, new_transaction(), data={"returnUrl": "https://evil.example/"})
    answer = send(client, saleor, INIT, payload).json()
    assert answer["result"] == "CHARGE_FAILURE"
    assert "returnUrl" in answer["message"]
    assert not Payment.objects.exists()


def test_a_verified_return_never_redirects_outside_the_allow_list(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    """The issue's case: a verified okUrl POST answered ``303 https://evil.example/``.
    A payment begun while the host was allowed (or before the lists were required) is
    not redirected once the host is no longer allowed."""
    from decimal import Decimal
    from urllib.parse import urlencode

    from cmi_core.sandbox import DEFAULT_MERCHANT
    from cmi_core.testing import make_callback

    settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS = ["evil.example"]
    payload = session_payload(
        INIT, new_transaction(), data={"returnUrl": "https://evil.example/steal"}
    )
    answer = send(client, saleor, INIT, payload).json()
    fields = answer["data"]["fields"]
    signed = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=fields["oid"],
        amount=Decimal(fields["amount"]),
        request_fields=fields,
    )
    del settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS  # now fail closed
    response = client.post(
        "/cmi/ok", data=urlencode(signed), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "Location" not in response
    settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS = ["evil.example"]  # the same POST, allowed
    response = client.post(
        "/cmi/ok", data=urlencode(signed), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 303
    assert response["Location"].startswith("https://evil.example/steal?")


def test_the_demo_allows_any_saleor_and_host(
    client: Client, saleor: FakeSaleor, settings: Any
) -> None:
    del settings.CMI_SALEOR_ALLOWED_API_URLS
    del settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS
    settings.CMI_SALEOR_DEMO = True
    assert register(client, saleor).status_code == 200
    from cmi_saleor import conf

    assert conf.return_url_allowed("https://anything.example/back")
    settings.DEBUG = True  # DEBUG alone is not the demo
    settings.CMI_SALEOR_DEMO = False
    assert not conf.return_url_allowed("https://anything.example/back")
    assert not conf.api_url_allowed(saleor.api_url)


# -- system checks -------------------------------------------------------------------------


def test_the_test_settings_pass_every_check() -> None:
    assert [m for m in checks.run_checks() if m.is_serious()] == []
    # cmi_django.W001: the tests run their tasks with the immediate backend, on purpose.
    assert [
        m
        for m in checks.run_checks(include_deployment_checks=True)
        if m.id and m.id.startswith("cmi") and m.id != "cmi_django.W001"
    ] == []


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("CMI_SALEOR_ALLOWED_API_URLS", "cmi_saleor.E001"),
        ("CMI_SALEOR_ALLOWED_RETURN_HOSTS", "cmi_saleor.E002"),
    ],
)
def test_unset_allow_lists_are_check_errors(settings: Any, setting: str, error: str) -> None:
    assert error not in ids()
    delattr(settings, setting)
    (found,) = [m for m in checks.run_checks() if m.id == error]
    assert found.level == checks.ERROR
    assert setting in found.msg
    assert found.hint
    settings.CMI_SALEOR_DEMO = True
    assert error not in ids()


def test_other_saleor_check_errors(settings: Any) -> None:
    assert not {"cmi_saleor.E003", "cmi_saleor.E004", "cmi_saleor.E005"} & ids()
    settings.CMI_SALEOR_APP_URL = "cmi-app.example.ma"
    assert "cmi_saleor.E003" in ids()
    settings.CMI_SALEOR_APP_URL = "https://cmi-app.example.ma"
    settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS = [None]
    assert "cmi_saleor.E005" in ids()
    settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS = ["shop.example.ma"]
    settings.ROOT_URLCONF = "tests.adapters.saleor.test_fail_closed"
    found = ids()
    assert "cmi_saleor.E004" in found
    assert "cmi_django.E006" in found


@pytest.mark.parametrize("value", [0, -1, 18, 30, "soon", float("nan")])
def test_an_action_wait_saleor_would_not_see_the_end_of_is_a_check_error(
    settings: Any, value: Any
) -> None:
    """The app must answer a charge, refund or cancel before Saleor gives up (18 s)."""
    assert "cmi_saleor.E006" not in ids()  # unset: 14 s
    settings.CMI_SALEOR_ACTION_WITHIN = value
    (found,) = [m for m in checks.run_checks() if m.id == "cmi_saleor.E006"]
    assert found.level == checks.ERROR
    assert "CMI_SALEOR_ACTION_WITHIN" in found.msg
    settings.CMI_SALEOR_ACTION_WITHIN = 10
    assert "cmi_saleor.E006" not in ids()


urlpatterns: list[Any] = []  # a URLconf without the app's URLs, for the check above


def test_manage_py_check_refuses_to_start_without_allow_lists(tmp_path: Path) -> None:
    """The example app, as served in production: ``check`` (as ``runserver``, ``migrate``)
    exits non-zero naming the settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMI_SALEOR", "DJANGO_"))}
    env.update(
        DJANGO_SECRET_KEY="a-real-secret-key-for-this-test-only",
        CMI_SALEOR_APP_URL="https://cmi-app.example.ma",
        DATABASE_URL="",
        PYTHONPATH=str(ROOT),
    )
    manage = ROOT / "examples" / "saleor_app" / "manage.py"
    failed = subprocess.run(
        [sys.executable, str(manage), "check"], env=env, capture_output=True, text=True, check=False
    )
    assert failed.returncode != 0
    assert "cmi_saleor.E001" in failed.stderr
    assert "cmi_saleor.E002" in failed.stderr
    wsgi = subprocess.run(
        [sys.executable, "-c", "import saleor_app.wsgi"],
        env={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{manage.parent}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert wsgi.returncode != 0
    assert "cmi_saleor.E001" in wsgi.stderr
    env.update(
        CMI_SALEOR_ALLOWED_API_URLS="https://shop.example.ma/graphql/",
        CMI_SALEOR_ALLOWED_RETURN_HOSTS="shop.example.ma",
    )
    passed = subprocess.run(
        [sys.executable, str(manage), "check"], env=env, capture_output=True, text=True, check=False
    )
    assert passed.returncode == 0, passed.stderr


def test_example_refuses_to_start_without_a_secret_key() -> None:
    """No demo key behind gunicorn: without DJANGO_SECRET_KEY the settings do not load,
    unless CMI_SALEOR_DEMO=1 says it is the local demo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMI_SALEOR", "DJANGO_"))}
    env.update(PYTHONPATH=str(ROOT / "examples" / "saleor_app"), DATABASE_URL="")
    code = "import saleor_app.settings as s; print(s.SECRET_KEY)"
    failed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert failed.returncode != 0
    assert "DJANGO_SECRET_KEY" in failed.stderr
    demo = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "CMI_SALEOR_DEMO": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr


@pytest.mark.parametrize(("kept", "expected"), [(None, 60), ("0", 0), ("300", 300)])
def test_example_keeps_its_postgresql_connections(kept: str | None, expected: int) -> None:
    """On PostgreSQL the example keeps each thread's connection between requests (the
    callback's statements are prepared on it), 60 s unless DATABASE_CONN_MAX_AGE says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMI_SALEOR", "DJANGO_"))}
    env.update(
        PYTHONPATH=str(ROOT / "examples" / "saleor_app"),
        DATABASE_URL="postgresql://cmi:secret@db.example:5432/cmi",
        CMI_SALEOR_DEMO="1",
    )
    env.pop("DATABASE_CONN_MAX_AGE", None)
    if kept is not None:
        env["DATABASE_CONN_MAX_AGE"] = kept
    code = (
        "import saleor_app.settings as s; d = s.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(expected), "True"]


# -- framing -------------------------------------------------------------------------------


def test_dashboard_page_may_be_framed_only_by_the_registered_saleor(
    client: Client, saleor: FakeSaleor, installation: Any, settings: Any
) -> None:
    response = client.get("/app", {"saleorApiUrl": saleor.api_url})
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "frame-ancestors https://saleor.example.com"
    assert "X-Frame-Options" not in response
    for stranger in ("https://evil.example/graphql/", "", "javascript:alert(1)", "\x00"):
        response = client.get("/app", {"saleorApiUrl": stranger})
        assert response["Content-Security-Policy"] == "frame-ancestors 'none'"
    settings.CMI_SALEOR_DASHBOARD_ORIGINS = [
        "https://dashboard.example.com/dashboard/",
        "https://*.evil.example",  # never a wildcard
        "https://x.example; script-src *",  # never another directive
    ]
    response = client.get("/app", {"saleorApiUrl": saleor.api_url})
    assert response["Content-Security-Policy"] == (
        "frame-ancestors https://saleor.example.com https://dashboard.example.com"
    )
