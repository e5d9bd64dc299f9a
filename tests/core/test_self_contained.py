"""The repository stands alone: a bare clone has everything its code, tests and docs use.

Nothing tracked may read or cite a folder beside the clone (a user's clone has none), a
private digest of CMI's guide instead of ``docs/protocol.md``, or a machine's absolute
paths; and no virtual environment may be committed (its scripts and ``.pth`` files point at
the machine that made it, and ``dev.py`` would trust its install stamp).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Written in pieces so that this file does not match itself.
FORBIDDEN = {
    ".." + "/shared": "a folder beside the clone",
    "shared" + "/saleor": "Saleor's files beside the clone (now in tests/adapters/saleor/data)",
    "shared" + "/cmi": "CMI's guide beside the clone (cite it by name and section)",
    "PROTOCOL" + ".md": "a digest outside the repository (cite docs/protocol.md)",
    "cmi-ecom-" + "integration": "the guide's file name (cite the guide by name and section)",
    "/" + "work/": "an absolute path of the machine the code was written on",
}

#: Folders never walked when the tree is not a git checkout (an sdist, a copied tree).
UNTRACKED_DIRS = {".git", "__pycache__", "build", "dist", "node_modules"}


def tracked_files() -> list[Path]:
    """Files under version control, or every source file when this is not a git checkout."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listing = subprocess.run(
            ["git", "ls-files", "-z"],  # noqa: S607 -- git from PATH, as a developer runs it
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        return [ROOT / name for name in listing.decode().split("\0") if name]
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [
            d
            for d in dirs
            if d not in UNTRACKED_DIRS
            and not d.startswith((".venv", ".mypy", ".ruff", ".pytest", ".hypothesis"))
            and not d.endswith(".egg-info")
        ]
        files.extend(Path(folder) / name for name in names)
    return files


def test_the_listing_sees_the_repository() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in tracked_files()}
    assert {"pyproject.toml", "cmi_core/__init__.py", "docs/protocol.md"} <= names


def test_no_file_points_outside_the_repository() -> None:
    offences = []
    for path in tracked_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for needle, why in FORBIDDEN.items():
            for number, line in enumerate(text.splitlines(), start=1):
                if needle in line:
                    offences.append(f"{path.relative_to(ROOT)}:{number}: {needle!r} ({why})")
    assert not offences, "\n".join(offences)


def test_no_virtual_environment_is_committed() -> None:
    environments = sorted(
        path.parent.relative_to(ROOT).as_posix()
        for path in tracked_files()
        if path.name == "pyvenv.cfg"
    )
    assert environments == []


def anchors(markdown: str) -> set[str]:
    """GitHub's ids of the headings: lower case, punctuation dropped, spaces to ``-``."""
    ids = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE):
        ids.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return ids


def test_relative_links_in_the_docs_lead_somewhere() -> None:
    files = [path for path in tracked_files() if path.suffix == ".md" and path.is_file()]
    broken = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code, not links
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            name, _, anchor = target.partition("#")
            linked = (path.parent / name).resolve() if name else path
            if not linked.is_relative_to(ROOT) or not linked.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif (
                anchor
                and linked.suffix == ".md"
                and anchor not in anchors(linked.read_text(encoding="utf-8"))
            ):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
