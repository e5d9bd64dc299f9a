"""An answer CMI's API gives must prove the operation the client asked for.

An ``Approved`` that names another order (its ``OrderId``), or whose ``ProcReturnCode`` is
not ``00``, proves nothing about the capture, void or refund that was sent: it is not a
success (the shop would record money moved that may not have moved), and not a plain
refusal either (the request did reach CMI): the outcome is unknown
(:class:`APITransportError`, not retryable), so the shop settles it from CMI's history.
A status report for another order is refused likewise: it would be applied to this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
import responses

from cmi_core.api import CMIClient
from cmi_core.config import CMIConfig
from cmi_core.errors import APIError, APITransportError

API_URL = "https://testpayment.cmi.co.ma/fim/api"


def cc5(order_id: str = "ORDER-1", response: str = "Approved", proc: str = "00") -> str:
    fields = {
        "OrderId": order_id,
        "GroupId": order_id,
        "Response": response,
        "AuthCode": "P12345",
        "HostRefNum": "325322002345",
        "ProcReturnCode": proc,
        "TransId": "23253WmXE12345",
        "ErrMsg": "",
    }
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><CC5Response>{body}</CC5Response>'


@pytest.fixture
def client() -> Iterator[CMIClient]:
    config = CMIConfig(
        client_id="600000001",
        store_key="TEST-STORE-KEY",
        api_username="apiuser",
        api_password="S3cr3t-P@ss",
    )
    with CMIClient(config, retries=0, sleep=lambda _: None) as api:
        yield api


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


MONEY: dict[str, Callable[[CMIClient], object]] = {
    "capture": lambda c: c.capture("ORDER-1"),
    "partial-capture": lambda c: c.capture("ORDER-1", Decimal("10.00"), "504"),
    "void": lambda c: c.void("ORDER-1"),
    "refund": lambda c: c.refund("ORDER-1", Decimal("10.00"), "504"),
}


@pytest.mark.parametrize("call", list(MONEY.values()), ids=list(MONEY))
def test_an_approval_for_another_order_is_an_unknown_outcome(
    client: CMIClient, mocked: responses.RequestsMock, call: Callable[[CMIClient], object]
) -> None:
    mocked.add(responses.POST, API_URL, body=cc5(order_id="ORDER-2"))
    with pytest.raises(APITransportError) as caught:
        call(client)
    assert caught.value.retryable is False
    assert "outcome is unknown" in str(caught.value)
    assert "OrderId" in str(caught.value)
    assert len(mocked.calls) == 1  # sent once, never again


@pytest.mark.parametrize("proc", ["05", "99", "XX"])
@pytest.mark.parametrize("call", list(MONEY.values()), ids=list(MONEY))
def test_an_approval_with_a_failing_return_code_is_an_unknown_outcome(
    client: CMIClient,
    mocked: responses.RequestsMock,
    call: Callable[[CMIClient], object],
    proc: str,
) -> None:
    mocked.add(responses.POST, API_URL, body=cc5(proc=proc))
    with pytest.raises(APITransportError) as caught:
        call(client)
    assert caught.value.retryable is False
    assert "outcome is unknown" in str(caught.value)
    assert len(mocked.calls) == 1


def test_a_status_report_for_another_order_is_refused(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    mocked.add(responses.POST, API_URL, body=cc5(order_id="ORDER-2"))
    with pytest.raises(APIError, match="OrderId"):
        client.status("ORDER-1", "504")


@pytest.mark.parametrize("call", list(MONEY.values()), ids=list(MONEY))
def test_the_proving_answer_is_accepted(
    client: CMIClient, mocked: responses.RequestsMock, call: Callable[[CMIClient], object]
) -> None:
    mocked.add(responses.POST, API_URL, body=cc5())
    assert getattr(call(client), "approved", None) is True


def test_an_answer_without_order_id_is_still_read(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    """CMI's answer names the order; one that names none is not contradicting us."""
    mocked.add(responses.POST, API_URL, body=cc5(order_id=""))
    assert client.void("ORDER-1").approved is True


def test_a_refusal_for_another_order_stays_a_refusal(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    """Declined proves nothing was done, whatever order it names."""
    mocked.add(
        responses.POST, API_URL, body=cc5(order_id="ORDER-2", response="Declined", proc="05")
    )
    with pytest.raises(APIError) as caught:
        client.void("ORDER-1")
    assert not isinstance(caught.value, APITransportError)


@pytest.mark.parametrize(
    "body",
    [
        cc5(response="Declined", proc="00"),
        cc5(response="", proc="99"),
        '<?xml version="1.0" encoding="UTF-8"?><CC5Response></CC5Response>',
    ],
    ids=["declined-with-00", "no-response", "empty"],
)
@pytest.mark.parametrize("call", list(MONEY.values()), ids=list(MONEY))
def test_an_answer_that_is_not_a_clear_refusal_is_an_unknown_outcome(
    client: CMIClient,
    mocked: responses.RequestsMock,
    call: Callable[[CMIClient], object],
    body: str,
) -> None:
    """A refusal means nothing was done, so the shop may send the operation again: only
    an answer that says so (``Declined`` or ``Error``, ProcReturnCode not 00) is one."""
    mocked.add(responses.POST, API_URL, body=body)
    with pytest.raises(APITransportError) as caught:
        call(client)
    assert caught.value.retryable is False
    assert "outcome is unknown" in str(caught.value)
    assert len(mocked.calls) == 1
