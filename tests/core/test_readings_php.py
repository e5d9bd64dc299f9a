"""The kits' readings against PHP itself, when a ``php`` command is installed.

Thousands of random values (seeded) go through the PHP kits' own expressions and through
:mod:`cmi_core.hashing`: the byte-wise "document" rule, ``html_entity_decode($v,
ENT_QUOTES, 'UTF-8')``, ``htmlspecialchars($v, ENT_QUOTES)`` (the emulator's
``kit-decoded`` posts) and the request rewrite, on which every reading must agree. Skipped
without PHP (``apt-get install php-cli``); nothing else in the suite needs it.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess

import pytest

from cmi_core.hashing import (
    Reading,
    _join_python,
    _kit_value,
    compute_hash,
    html_entity_decode,
    neutralise,
)
from cmi_core.sandbox.fields import html_encode

PHP = shutil.which("php")
pytestmark = pytest.mark.skipif(PHP is None, reason="no php command (apt-get install php-cli)")

SCRIPT = r"""
$values = json_decode(stream_get_contents(STDIN), true);
$esc = function ($v) { return str_replace("|", "\\|", str_replace("\\", "\\\\", $v)); };
$out = [];
foreach ($values as $v) {
    $kit = preg_replace('/document(.)/i', 'document.', $esc(trim($v)));
    $decoded = trim(html_entity_decode(preg_replace("/\n$/", "", $v), ENT_QUOTES, 'UTF-8'));
    $kitDecoded = preg_replace('/document(.)/i', 'document.', $esc($decoded));
    $out[] = [
        base64_encode($kit),
        base64_encode($kitDecoded),
        base64_encode(html_entity_decode($v, ENT_QUOTES, 'UTF-8')),
        base64_encode(htmlspecialchars($v, ENT_QUOTES)),
    ];
}
echo json_encode($out);
"""

PIECES = [
    "document", "Document", "DOCUMENT", "dOcUmEnT", "documents", "ocument", "d", "é", "É",
    "’", "\n", "\r", " ", "\t", "|", "\\", "&", ";", "#", "x", "&amp;", "&#39;", "&#039;",
    "&#x27;", "&apos;", "&quot;", "&lt;", "&gt;", "&eacute;", "&Eacute;", "&AMP;", "&nbsp;",
    "&#68;", "&#x44;", "&#0;", "&#128;", "&#159;", "&#160;", "&#xD800;", "&#xFFFE;",
    "&#x10FFFF;", "&#x110000;", "&#x0x41;", "&#99999999999;", "&#", "&#x", "&euro;", "ß",
    "漢", "😀", "\u00a0", "–", "ñ", "0", "9", "a", "Z", "'", '"', "<", ">", "Porte-",
]  # fmt: skip


def _php(values: list[str]) -> list[list[bytes]]:
    assert PHP is not None
    done = subprocess.run(
        [PHP, "-d", "display_errors=stderr", "-r", SCRIPT],
        input=json.dumps(values).encode("utf-8"),
        capture_output=True,
        timeout=120,
        check=True,
    )
    return [[base64.b64decode(item) for item in row] for row in json.loads(done.stdout)]


def _random_values(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - seeded test data, not secrets
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 10))) for _ in range(count)]


def test_kit_readings_and_decoding_match_php() -> None:
    values = _random_values(17, 5000)
    for value, (kit, kit_decoded, decoded, encoded) in zip(values, _php(values), strict=True):
        assert _kit_value(value, decode=False) == kit, value
        assert _kit_value(value, decode=True) == kit_decoded, value
        assert html_entity_decode(value).encode("utf-8") == decoded, value
        assert html_encode(value).encode("utf-8") == encoded, value


def test_neutralised_values_hash_alike_in_php_and_the_guide() -> None:
    values = [neutralise(v) for v in _random_values(1004, 5000)]
    for value, (kit, kit_decoded, _, _) in zip(values, _php(values), strict=True):
        guide = _join_python((value,), b"")
        assert kit == guide == kit_decoded, value


HASH_SCRIPT = r"""
$maps = json_decode(stream_get_contents(STDIN), true);
$esc = function ($v) { return str_replace("|", "\\|", str_replace("\\", "\\\\", $v)); };
$out = [];
foreach ($maps as [$data, $storeKey]) {
    $hashes = [];
    foreach ([false, true] as $decode) {  // the kits' request hash, then their callback hash
        $postParams = array_keys($data);
        natcasesort($postParams);
        $hashval = "";
        foreach ($postParams as $param) {
            $v = $data[$param];
            $v = $decode
                ? trim(html_entity_decode(preg_replace("/\n$/", "", $v), ENT_QUOTES, 'UTF-8'))
                : trim($v);
            $escaped = preg_replace('/document(.)/i', 'document.', $esc($v));
            $lower = strtolower($param);
            if ($lower != "hash" && $lower != "encoding") {
                $hashval .= $escaped . "|";
            }
        }
        $hashval .= $esc($storeKey);
        $hashes[] = base64_encode(pack('H*', hash('sha512', $hashval)));
    }
    $out[] = $hashes;
}
echo json_encode($out);
"""
NAMES = ["oid", "amount", "BillToName", "desc1", "desc10", "desc2", "EXTRA.CARDBRAND",
         "HASH", "encoding", "Response", "EXTRAS", "EXTRA_X", "description", "ErrMsg"]  # fmt: skip


def test_whole_kit_hashes_match_php() -> None:
    rng = random.Random(2026)  # noqa: S311 - seeded test data, not secrets
    maps = []
    for _ in range(400):
        names = rng.sample(NAMES, rng.randint(1, len(NAMES)))
        data = {
            name: "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6))) for name in names
        }
        maps.append((data, "".join(rng.choice(PIECES) for _ in range(3)) or "k"))
    assert PHP is not None
    done = subprocess.run(
        [PHP, "-d", "display_errors=stderr", "-r", HASH_SCRIPT],
        input=json.dumps(maps).encode("utf-8"),
        capture_output=True,
        timeout=120,
        check=True,
    )
    for (data, key), (kit, kit_decoded) in zip(maps, json.loads(done.stdout), strict=True):
        assert compute_hash(data, key, Reading.KIT) == kit, data
        assert compute_hash(data, key, Reading.KIT_DECODED) == kit_decoded, data
