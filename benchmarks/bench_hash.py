"""Hash and verify a realistic 50-field callback; compare with bare SHA-512 + Base64.

    .venv/bin/python benchmarks/bench_hash.py

The bare digest of the same plaintext is the unavoidable cost; the goal (issue 2) is a
ratio of at most 3 for both computing and verifying the ver3 hash. With the C accelerator
built (``cmi_core._speedups``, the default where a compiler exists) the pure-Python
definition is measured too, for installs without one.
"""

from __future__ import annotations

import base64
import hashlib
import statistics
import timeit
from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter

from cmi_core import hashing
from cmi_core.config import CMIConfig
from cmi_core.hashing import (
    EXCLUDED_FIELDS,
    compute_hash,
    hash_plaintext,
    natcase_sorted,
    verify_hash,
)
from cmi_core.request import Address, LineItem, PaymentOrder, build_payment_request
from cmi_core.testing import make_callback

KEY = "Benchmark-Store-Key-01"


def realistic_callback() -> dict[str, str]:
    """A callback as CMI posts it for a three-line order (guide §4.2.5's shape)."""
    config = CMIConfig(client_id="600000001", store_key=KEY)
    order = PaymentOrder(
        oid="100042-1",
        amount=Decimal("27.45"),
        email="amina.elidrissi@example.ma",
        billing_name="Amina El Idrissi",
        phone="+212 600 000 000",
        ok_url="https://boutique.example.ma/checkout/cmi/ok/",
        fail_url="https://boutique.example.ma/checkout/cmi/fail/",
        callback_url="https://boutique.example.ma/checkout/cmi/callback/",
        shop_url="https://boutique.example.ma/basket/",
        description="Commande 100042 - Boutique Exemple",
        billing=Address(
            street1="12, Rue Tarik Ibn Ziad",
            city="Casablanca",
            state="Grand Casablanca",
            postal_code="20000",
            country="504",
            company="Atelier Amina",
        ),
        items=[
            LineItem(
                id="a1",
                item_number="a1",
                product_code="TH-01",
                description="Thé vert",
                quantity=3,
                unit_price=Decimal("2.00"),
                total=Decimal("6.00"),
            ),
            LineItem(
                id="b1",
                item_number="b1",
                product_code="MI-02",
                description="Miel",
                quantity=1,
                unit_price=Decimal("21.45"),
                total=Decimal("21.45"),
            ),
        ],
    )
    request = build_payment_request(config, order).as_dict()
    extra = {
        "ACQBIN": "439218",
        "EXTRA.CARDISSUER": "CDM",
        "Ecom_Payment_Card_ExpDate_Month": "12",
        "Ecom_Payment_Card_ExpDate_Year": "28",
        "eci": "05",
        "cavv": "AAABCRA0I1WFQDgnWDSXAAAAAAA=",
        "xid": "7AFKUXDa5KeelWxM6wxfB9YfLDY=",
        "md": "400000:BD64FA1BA77717D21DA26554D2DE0C9E65AB5D5872737AE720F5D2484180228C:4024",
        "merchantID": "600000001",
        "txstatus": "Y",
    }
    fields = make_callback(KEY, oid="100042-1", amount=Decimal("27.45"), request_fields=request)
    fields.update(extra)
    fields.pop("HASH")
    fields["HASH"] = compute_hash(fields, KEY)
    return fields


def measure(
    functions: dict[str, Callable[[], object]], number: int, rounds: int
) -> dict[str, float]:
    """Median microseconds per call of each function, timed in alternation.

    Each round times every function once, back to back, so a change of CPU speed or load
    during the run touches all of them alike instead of skewing one ratio.
    """
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            seconds = timeit.timeit(function, number=number)
            samples[name].append(seconds / number * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    fields = realistic_callback()
    plaintext = hash_plaintext(fields, KEY).encode("utf-8")
    # The least any Python implementation does: pick the values in a known order, join,
    # encode, digest. No sorting, trimming, escaping or checks: a floor, not a contender.
    pick = itemgetter(*natcase_sorted(k for k in fields if k.lower() not in EXCLUDED_FIELDS))
    accelerated = hashing._c_plaintext  # the benchmark compares both definitions

    def pure_python(function: Callable[[dict[str, str], str], object]) -> Callable[[], object]:
        def call() -> object:
            hashing._c_plaintext = None
            try:
                return function(fields, KEY)
            finally:
                hashing._c_plaintext = accelerated

        return call

    functions: dict[str, Callable[[], object]] = {
        "bare SHA-512 + Base64": lambda: base64.b64encode(hashlib.sha512(plaintext).digest()),
        "floor: pick+join+SHA": lambda: base64.b64encode(
            hashlib.sha512("|".join(pick(fields)).encode()).digest()
        ),
        "compute_hash (ver3)": lambda: compute_hash(fields, KEY),
        "verify_hash (ver3)": lambda: verify_hash(fields, KEY),
    }
    if hashing.ACCELERATED:
        functions["compute_hash, pure Python"] = pure_python(compute_hash)
        functions["verify_hash, pure Python"] = pure_python(verify_hash)
    figures = measure(functions, number=5_000, rounds=15)
    bare = figures["bare SHA-512 + Base64"]
    print(f"callback: {len(fields)} fields, plaintext {len(plaintext)} bytes")
    print(f"C accelerator (cmi_core._speedups): {'built' if hashing.ACCELERATED else 'absent'}")
    for name, micros in figures.items():
        ratio = "" if micros is bare else f"  ratio {micros / bare:.2f}"
        print(f"{name:<27}: {micros:7.2f} us/call{ratio}")
    print("goal: ratio <= 3.00 (compute_hash and verify_hash as installed)")


if __name__ == "__main__":
    main()
