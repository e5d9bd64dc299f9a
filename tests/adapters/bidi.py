"""What the eye reads in a right-to-left page: the drawn order of characters (browser tests).

``innerText`` gives the logical order whatever the bidi algorithm draws, so a reference
split by it ("100002-1" drawn as "-100002" then "1)") still reads right there; these
helpers measure where each character is drawn instead.
"""

from __future__ import annotations

import itertools
from typing import Any

#: Where each character of ``needle`` (the first time it occurs in ``selector``'s text) is
#: drawn: [left, top] per character, in the order of the text.
_GLYPHS = """([selector, needle]) => {
  const root = document.querySelector(selector);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  let text = "";
  while (walker.nextNode()) {
    nodes.push([walker.currentNode, text.length]);
    text += walker.currentNode.data;
  }
  const start = text.indexOf(needle);
  if (start < 0) return null;
  const out = [];
  for (let i = start; i < start + needle.length; i++) {
    let k = nodes.length - 1;
    while (nodes[k][1] > i) k--;
    const [node, offset] = nodes[k];
    const range = document.createRange();
    range.setStart(node, i - offset);
    range.setEnd(node, i - offset + 1);
    const box = range.getBoundingClientRect();
    out.push([box.left, box.top]);
  }
  return out;
}"""


def reads_left_to_right(page: Any, selector: str, needle: str) -> bool:
    """``needle`` is drawn whole on one line, its characters left to right: what the eye
    reads, not the DOM's order (innerText gives the logical order whatever is drawn)."""
    glyphs = page.evaluate(_GLYPHS, [selector, needle])
    assert glyphs, f"{needle!r} not in {selector}"
    lefts = [left for left, _ in glyphs]
    tops = {round(top) for _, top in glyphs}
    return len(tops) == 1 and all(a < b for a, b in itertools.pairwise(lefts))


def english_msgids(*catalogues: Any) -> list[str]:
    """The English msgids of this project's ``.po`` catalogues (``catalogues``: paths)
    that a page could show as they are: with a letter, and no placeholder. A msgid its own
    translation quotes on purpose (CMI's term beside the Arabic: "... (store key)") is left
    out."""
    from babel.messages.pofile import read_po

    found: set[str] = set()
    for path in catalogues:
        with open(path, "rb") as po:
            for message in read_po(po):
                ids = message.id if isinstance(message.id, tuple) else (message.id,)
                strs = message.string if isinstance(message.string, tuple) else (message.string,)
                quoted = " ".join(s for s in strs if s)
                found.update(
                    i for i in ids if i and "%" not in i and "{" not in i and i not in quoted
                )
    return sorted(i for i in found if len(i) > 3 and any(c.isalpha() for c in i))


def english_left(text: str, msgids: list[str]) -> list[str]:
    """The ``msgids`` that ``text`` shows whole (as words, case kept): untranslated."""
    import re

    return [i for i in msgids if re.search(rf"(?<!\w){re.escape(i)}(?!\w)", text)]
