"""Test-wide fixtures: real services (Chromium) that either run or say why they did not.

With ``CMI_REQUIRE_SERVICES=1`` (what ``.ci/run`` sets through ``python3 dev.py test
--require-services``) a missing service is a test failure; elsewhere the tests that need
it are skipped with the reason spelled out.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("CMI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def services_required() -> bool:
    return os.environ.get("CMI_REQUIRE_SERVICES", "") not in ("", "0", "false")


def missing_service(reason: str) -> None:
    """Fail when services are required (CI), skip with the reason otherwise."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (one per test session)."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        missing_service(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CMI_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page for one test."""
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def sync_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an asyncio loop in the test thread once a browser has
    started, so Django takes every ORM call there (the test database's set-up included)
    for async code and refuses it. They are plain synchronous calls between browser
    steps: browser test modules allow them with this fixture."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(autouse=True)
def _nothing_prepared() -> None:
    """Each test starts with no statement prepared by this process's connections (the
    callback's statements are prepared on a connection's second transaction,
    :mod:`cmi_django.statements`): what a test sends does not hang on the tests before."""
    import sys

    statements = sys.modules.get("cmi_django.statements")
    if statements is not None:
        statements._CONNECTIONS.clear()
        statements._REFUSED.clear()
