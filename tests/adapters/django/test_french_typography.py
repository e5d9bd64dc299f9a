"""French typography in what this project ships in French (issue 13).

French puts a no-break space before ``:`` (U+00A0) and a narrow no-break space before
``;``, ``?`` and ``!`` (U+202F): a plain space lets the line break before the mark and
leaves it alone at the start of the next line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[3]
CATALOGUES = sorted(ROOT.glob("adapters/*/locale/fr/LC_MESSAGES/django.po"))
#: A plain space before the mark, or the mark glued to a word (``:`` in ``http://`` and
#: ``%(x)s:`` placeholders aside).
_PLAIN_SPACE = re.compile(r" [:;?!]")
_GLUED = re.compile(r"[^\s\u00a0\u202f][;?!]|[^\s\u00a0\u202f/\d%)]:(?!//)")


def _translations(path: Path) -> list[tuple[str, str]]:
    with path.open("rb") as handle:
        catalogue = read_po(handle)
    found = []
    for message in catalogue:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        found.extend((str(ids[0]), text) for text in strings if text)
    return found


def test_the_catalogues_are_found() -> None:
    names = {path.parts[-5] for path in CATALOGUES}
    assert {"cmi_django", "cmi_oscar", "cmi_wagtail"} <= names


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda path: path.parts[-5])
def test_no_plain_space_before_french_high_punctuation(path: Path) -> None:
    wrong = [
        (msgid, text)
        for msgid, text in _translations(path)
        if _PLAIN_SPACE.search(text) or _GLUED.search(text)
    ]
    assert wrong == []


def test_the_rule_sees_a_plain_space() -> None:
    """The check itself can fail: a plain space is caught, the no-break ones are not."""
    assert _PLAIN_SPACE.search("Refus du CMI : refusé")
    assert _PLAIN_SPACE.search("Vraiment ?")
    assert not _PLAIN_SPACE.search("Refus du CMI\u00a0: refusé\u202f; vraiment\u202f?")
    assert not _GLUED.search("http://127.0.0.1:8765 et %(amount)s\u00a0: ok")


TEMPLATES = sorted(ROOT.glob("adapters/*/templates/**/*.*"))
#: A mark written after a translated label (``{% translate "Amount" %}:``) cannot get
#: French spacing: the mark belongs inside the translated string.
_MARK_AFTER_LABEL = re.compile(r"\{%\s*(?:trans|translate)\s+\"[^\"]*\"[^%]*%\}[:;?!]")


def test_no_mark_glued_after_a_translated_label_in_templates() -> None:
    assert TEMPLATES
    glued = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in TEMPLATES
        for match in _MARK_AFTER_LABEL.finditer(path.read_text(encoding="utf-8"))
    ]
    assert glued == []
