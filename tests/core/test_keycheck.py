"""The store key checked at the gateway (cmi_core.keycheck), against ``cmi sandbox``.

The emulator refuses a form whose hash its merchant's store key does not give with
CMI's 3D-1004 page, and shows its card form otherwise, as CMI does (guide §6.2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cmi_core import CMIConfig
from cmi_core.keycheck import StoreKeyVerdict, check_store_key
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox

SHOP = "https://shop.example.ma/"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0) as running:
        yield running


class Recording(requests.Session):
    """A real session that keeps what was POSTed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, str]] = []

    # The ignore: only the two arguments the check passes are named here.
    def post(self, url: Any, data: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        self.sent.append(dict(data))
        return super().post(url, data=data, **kwargs)


def config(base_url: str, *, store_key: str = DEFAULT_MERCHANT.store_key, **more: Any) -> CMIConfig:
    values = {"client_id": DEFAULT_MERCHANT.client_id, "store_key": store_key, **more}
    return CMIConfig(base_url=base_url, **values)


def test_the_right_key_opens_the_payment_page(sandbox: Sandbox) -> None:
    found = check_store_key(config(sandbox.base_url), ok_url=SHOP, fail_url=SHOP)
    assert found.verdict is StoreKeyVerdict.RIGHT
    assert (found.http_status, found.codes) == (200, ())


def test_a_wrong_key_is_refused_with_3d_1004(sandbox: Sandbox) -> None:
    wrong = "NotTheStoreKey42"
    session = Recording()
    found = check_store_key(
        config(sandbox.base_url, store_key=wrong), ok_url=SHOP, fail_url=SHOP, session=session
    )
    assert found.verdict is StoreKeyVerdict.WRONG
    assert found.codes == ("3D-1004",)
    # What travelled holds the hash the key makes, never the key; the answer holds codes.
    [sent] = session.sent
    assert sent["hash"]
    assert all(wrong not in value for value in sent.values())
    assert wrong not in repr(found)


def test_nothing_is_charged(sandbox: Sandbox) -> None:
    session = Recording()
    check_store_key(config(sandbox.base_url), ok_url=SHOP, fail_url=SHOP, session=session)
    oid = session.sent[0]["oid"]
    assert oid.startswith("keycheck-")
    assert sandbox.order(oid) is None  # a page was shown; no transaction exists


def test_an_unknown_merchant_is_not_called_a_wrong_key(sandbox: Sandbox) -> None:
    stranger = CMIConfig(client_id="999999999", store_key="AnyKey1", base_url=sandbox.base_url)
    found = check_store_key(stranger, ok_url=SHOP, fail_url=SHOP)
    assert found.verdict is StoreKeyVerdict.UNKNOWN
    assert found.http_status == 400


def test_no_gateway_is_unknown_and_never_raises() -> None:
    found = check_store_key(
        config("http://127.0.0.1:9", http_timeout=2.0), ok_url=SHOP, fail_url=SHOP
    )
    assert found.verdict is StoreKeyVerdict.UNKNOWN
    assert found.http_status is None
    assert found.problem == "ConnectionError"


def test_an_invalid_shop_address_is_unknown_and_never_raises(sandbox: Sandbox) -> None:
    found = check_store_key(config(sandbox.base_url), ok_url="not a url", fail_url=SHOP)
    assert found.verdict is StoreKeyVerdict.UNKNOWN
    assert found.problem.startswith("okUrl:")
