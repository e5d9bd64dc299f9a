"""Review of the Wagtail list's kept drawings (review9): a site's template added while the
development server runs is drawn at once, not after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cmi_django.listing import clear_all
from django.utils.autoreload import file_changed

from tests.adapters.wagtail.test_filters_drawer import DRAWER, boss, drawer, needs_wagtail_8, page

pytestmark = pytest.mark.django_db
__all__ = ["boss"]  # the fixture, used by name


@needs_wagtail_8
def test_a_site_drawer_added_while_the_server_runs_is_drawn(
    boss: Any, settings: Any, tmp_path: Path
) -> None:
    """``runserver`` does not restart for a template: Django's autoreloader resets the
    template loaders (``file_changed``) and the next page reads the new template. The
    guard (the drawer's templates are Wagtail's) was kept per template engine for the
    process's life, and so were the drawings: a site's ``_filters.html`` written while
    the server ran was never drawn."""
    import django.template.autoreload  # noqa: F401 (connects Django's own receiver, as runserver does)

    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    clear_all()
    assert "site-drawer" not in drawer(page(boss, "?state=captured", ours=True)[0])
    path = tmp_path / DRAWER
    path.parent.mkdir(parents=True)
    path.write_text("<b id='site-drawer'>{{ filters.form.state.value }}</b>")
    file_changed.send(sender=None, file_path=path)
    ours = page(boss, "?state=captured", ours=True)[0]
    assert "<b id='site-drawer'>captured</b>" in ours
    assert ours == page(boss, "?state=captured", ours=False)[0]


@needs_wagtail_8
def test_a_changed_template_drops_every_kept_drawing(boss: Any) -> None:
    """The sidebar's, the dialog's and the dropdowns' drawings, the filters' drawers and the
    configuration script's parts are all dropped when a template changes under the
    development server, and none when Python code does (the server restarts)."""
    from cmi_django.listing import KeptDrawings
    from cmi_wagtail.templatetags import cmi_wagtail_chrome as chrome

    stores = (chrome._KEPT, chrome._DRAWERS, chrome._CONFIG_KEPT)
    assert all(isinstance(store, KeptDrawings) for store in stores)
    page(boss, "?state=captured", ours=True)
    assert all(len(store) for store in stores)
    file_changed.send(sender=None, file_path=Path("viewsets.py"))
    assert all(len(store) for store in stores)
    file_changed.send(sender=None, file_path=Path(DRAWER))
    assert [len(store) for store in stores] == [0, 0, 0]
