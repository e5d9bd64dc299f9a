"""The example projects from a fresh clone: their SQLite folder exists, nothing shadows a wheel.

Each test runs the example's own ``manage.py`` in a new interpreter, as a user would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run(args: list[str], cwd: Path, pythonpath: Path | None = None) -> str:
    # A local run of the examples: the Saleor app's demo mode and a throw-away key.
    env = {**os.environ, "CMI_SALEOR_DEMO": "1", "DJANGO_SECRET_KEY": "examples-test-key"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the example's own settings, not the tests'
    for name in ("OSCAR_SHOP_VAR", "WAGTAIL_SITE_VAR"):
        env.pop(name, None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    else:
        env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def tracked_copy(folder: str, destination: Path) -> Path:
    """The files git tracks under ``folder``, copied to ``destination`` (a fresh clone's)."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: what a clone holds is unknown")
    names = subprocess.run(
        ["git", "ls-files", "-z", folder],  # noqa: S607 -- git from PATH, as a developer runs it
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, names.split("\0")):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return destination / folder


@pytest.mark.parametrize("example", ["oscar_shop", "wagtail_site"])
def test_a_fresh_clone_opens_the_examples_database(example: str, tmp_path: Path) -> None:
    # Django opens the SQLite file in `check --database` (and `migrate`, `runserver`...):
    # its folder, var/, must be in the clone, since the settings create nothing at import.
    project = tracked_copy(f"examples/{example}", tmp_path)
    out = run(["manage.py", "check", "--database", "default"], cwd=project)
    assert "no issues" in out
    assert (project / "var" / "db.sqlite3").exists()


def test_the_saleor_app_uses_the_installed_package_not_the_checkout(tmp_path: Path) -> None:
    # An "installed" cmi-payments in its own site folder (links to the real packages, so
    # that it works); the app's manage.py must import that one, not the checkout's.
    site = tmp_path / "site-packages"
    site.mkdir()
    for package in ("cmi_core", "adapters/cmi_django", "adapters/cmi_saleor"):
        (site / Path(package).name).symlink_to(ROOT / package, target_is_directory=True)
    code = "import cmi_core, cmi_saleor; print(cmi_core.__file__); print(cmi_saleor.__file__)"
    manage = ROOT / "examples/saleor_app/manage.py"
    out = run([str(manage), "shell", "-c", code], cwd=tmp_path, pythonpath=site)
    # (Django's shell may first say how many models it imported: keep the paths only.)
    assert [line for line in out.splitlines() if line.endswith(".py")] == [
        str(site / "cmi_core/__init__.py"),
        str(site / "cmi_saleor/__init__.py"),
    ]


def wagtail_demo_says(tmp_path: Path, code: str) -> str:
    """The last line ``code`` prints in the Wagtail demo of a fresh clone, set up as
    ``run_demo.py`` sets it up, with ``u``, its editor."""
    project = tracked_copy("examples/wagtail_site", tmp_path)
    run(["manage.py", "migrate", "--no-input", "-v", "0"], cwd=project)
    run(["manage.py", "setup_demo"], cwd=project)
    editor = (
        "from django.contrib.auth import get_user_model as m;"
        "u = m().objects.get(username='editor');"
    )
    return run(["manage.py", "shell", "-c", editor + code], cwd=project).strip().splitlines()[-1]


def test_the_wagtail_demo_has_an_editor_who_is_not_a_superuser(tmp_path: Path) -> None:
    out = wagtail_demo_says(
        tmp_path,
        "print(u.is_superuser, u.check_password('editor'), [g.name for g in u.groups.all()],"
        " u.has_perm('wagtailadmin.access_admin'))",
    )
    assert out == "False True ['Editors'] True"


def test_the_wagtail_demos_admin_asks_no_third_party_for_avatars(tmp_path: Path) -> None:
    # Wagtail's default draws each staff member's avatar from gravatar.com, sending a hash
    # of their e-mail there: the demo runs offline and draws Wagtail's own image.
    out = wagtail_demo_says(
        tmp_path,
        "from wagtail.admin.templatetags.wagtailadmin_tags import avatar_url;"
        "print(bool(u.email), avatar_url(u, 50))",
    )
    has_email, url = out.split(" ", 1)
    assert has_email == "True"
    assert "gravatar" not in url
    assert url.startswith("/static/wagtailadmin/images/default-user-avatar.png"), url


@pytest.mark.parametrize("example", ["oscar_shop", "wagtail_site"])
def test_the_examples_run_cmi_tasks_with_the_immediate_backend(example: str) -> None:
    # The demos have no worker: each task (the order e-mail, the receipt, a capture) runs
    # at once after the commit, through the tasks framework cmi_django.tasks picked.
    code = (
        "import django; django.setup(); "
        "from cmi_django import tasks; "
        "print(type(tasks.capture_after_approval.get_backend()).__module__, "
        "tasks.framework().__name__)"
    )
    project = ROOT / "examples" / example
    out = run(["manage.py", "shell", "-c", code], cwd=project).splitlines()[-1].split()
    framework = "django.tasks" if importlib.util.find_spec("django.tasks") else "django_tasks"
    assert out == [f"{framework}.backends.immediate", framework]
