"""Review 6: an ``Approved`` that also says "no record found" is no refusal.

A refusal tells the shop nothing was done, so the operation may be sent again; an
answer that says ``Approved`` is not one, whatever its ``ErrMsg`` says: for a capture,
void or refund its outcome is unknown (settled from CMI's history, never sent again).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import responses

from cmi_core.api import CMIClient
from cmi_core.errors import APITransportError
from tests.core.test_api_proof import API_URL, MONEY, client, mocked  # noqa: F401


def _approved_not_found() -> str:
    fields = {
        "OrderId": "ORDER-1",
        "Response": "Approved",
        "ProcReturnCode": "99",
        "ErrMsg": "No record found for ORDER-1",
    }
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><CC5Response>{body}</CC5Response>'


@pytest.mark.parametrize("call", list(MONEY.values()), ids=list(MONEY))
def test_an_approved_no_record_found_is_an_unknown_outcome_not_a_refusal(
    client: CMIClient,  # noqa: F811
    mocked: responses.RequestsMock,  # noqa: F811
    call: Callable[[CMIClient], object],
) -> None:
    """It was an OrderNotFoundError (a plain refusal): the operation was failed and its
    key freed for a second sending, though CMI's answer said Approved."""
    mocked.add(responses.POST, API_URL, body=_approved_not_found())
    with pytest.raises(APITransportError) as caught:
        call(client)
    assert caught.value.retryable is False
    assert "outcome is unknown" in str(caught.value)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    "order_id", ["  ORDER-1\n", "", None], ids=["surrounding-space", "empty", "absent"]
)
@pytest.mark.parametrize("call", list(MONEY.values()), ids=list(MONEY))
def test_a_real_approval_is_still_a_success(
    client: CMIClient,  # noqa: F811
    mocked: responses.RequestsMock,  # noqa: F811
    call: Callable[[CMIClient], object],
    order_id: str | None,
) -> None:
    """The proof refuses no answer CMI gives for the order asked: its OrderId padded with
    white space, empty, or left out are approvals (only another order's is not)."""
    tag = "" if order_id is None else f"<OrderId>{order_id}</OrderId>"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><CC5Response>'
        f"{tag}<Response>Approved</Response><ProcReturnCode>00</ProcReturnCode>"
        "<TransId>23253WmXE12345</TransId></CC5Response>"
    )
    mocked.add(responses.POST, API_URL, body=body)
    result = call(client)
    assert result.approved  # type: ignore[attr-defined]
