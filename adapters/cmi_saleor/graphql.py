"""The GraphQL the app speaks: subscription queries (webhook payloads), its own queries.

Every document here is validated against Saleor's schema in the tests. Subscription
payloads are what Saleor sends as the webhook body: the ``event`` object of the query.
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
import time
from typing import Any

import requests
from cmi_django.operations import answer_by

from cmi_saleor import conf
from cmi_saleor.jsonbody import BadJSONError, read_object

__all__ = [
    "APP_ID_QUERY",
    "SUBSCRIPTIONS",
    "TRANSACTION_EVENT_REPORT",
    "SaleorAPIError",
    "execute",
]

_ADDRESS = """
fragment CmiAddress on Address {
  firstName lastName companyName streetAddress1 streetAddress2 city cityArea
  postalCode countryArea phone country { code }
}
"""

_SOURCE = (
    """
fragment CmiSource on OrderOrCheckout {
  __typename
  ... on Checkout {
    id email channel { slug } billingAddress { ...CmiAddress }
    lines { id quantity variant { id sku name product { name } } }
  }
  ... on Order {
    id number userEmail channel { slug } billingAddress { ...CmiAddress }
    lines { id quantity productName variantName productSku }
  }
}
"""
    + _ADDRESS
)

_TRANSACTION = """
fragment CmiTransaction on TransactionItem {
  id token pspReference
  events { id type pspReference createdAt amount { amount currency } }
}
"""


def _session(event_type: str, extra: str = "") -> str:
    return (
        f"subscription Cmi{event_type} {{ event {{ ... on {event_type} {{"
        " issuedAt version recipient { id }"
        " transaction { id token pspReference }"
        " sourceObject { ...CmiSource }"
        " data merchantReference action { amount currency actionType }"
        f" {extra} }} }} }}" + _SOURCE
    )


def _action(event_type: str) -> str:
    return (
        f"subscription Cmi{event_type} {{ event {{ ... on {event_type} {{"
        " issuedAt version recipient { id }"
        " action { amount currency actionType }"
        " transaction { ...CmiTransaction } } } }" + _TRANSACTION
    )


#: Sync event -> subscription query (the webhook body is its ``event``).
SUBSCRIPTIONS: dict[str, str] = {
    "PAYMENT_GATEWAY_INITIALIZE_SESSION": (
        "subscription CmiPaymentGatewayInitializeSession { event {"
        " ... on PaymentGatewayInitializeSession {"
        " issuedAt version recipient { id } data amount sourceObject { ...CmiSource } } } }"
        + _SOURCE
    ),
    "TRANSACTION_INITIALIZE_SESSION": _session("TransactionInitializeSession", "idempotencyKey"),
    "TRANSACTION_PROCESS_SESSION": _session("TransactionProcessSession"),
    "TRANSACTION_CHARGE_REQUESTED": _action("TransactionChargeRequested"),
    "TRANSACTION_REFUND_REQUESTED": _action("TransactionRefundRequested"),
    "TRANSACTION_CANCELATION_REQUESTED": _action("TransactionCancelationRequested"),
}

APP_ID_QUERY = "query CmiAppId { app { id } }"

TRANSACTION_EVENT_REPORT = """
mutation CmiTransactionEventReport(
  $id: ID!, $type: TransactionEventTypeEnum!, $amount: PositiveDecimal!,
  $pspReference: String!, $message: String, $externalUrl: String,
  $availableActions: [TransactionActionEnum!], $paymentMethodDetails: PaymentMethodDetailsInput
) {
  transactionEventReport(
    id: $id, type: $type, amount: $amount, pspReference: $pspReference, message: $message,
    externalUrl: $externalUrl, availableActions: $availableActions,
    paymentMethodDetails: $paymentMethodDetails
  ) {
    alreadyProcessed
    transactionEvent { id }
    errors { field message code }
  }
}
"""


#: The largest answer read from Saleor (the app's queries return a few hundred bytes).
MAX_RESPONSE = 1024 * 1024


class SaleorAPIError(Exception):
    """Saleor did not answer a query as expected (transport, HTTP status or GraphQL errors)."""


_local = threading.local()


def _http() -> requests.Session:
    """This thread's HTTP session: connections to Saleor are kept open and reused, so a
    callback's report does not pay a new TCP and TLS handshake each time.

    The environment's settings (``HTTPS_PROXY``, ``NO_PROXY``..., ``REQUESTS_CA_BUNDLE``)
    are read once per process and Saleor URL (:func:`_environment`), not by ``requests``
    on every POST (it scans the whole environment twice and looks for ``~/.netrc``: a
    third of a millisecond a report). No ``.netrc`` login: the app's token is the only
    credential sent to Saleor."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False
    return session


@functools.lru_cache(maxsize=64)
def _environment(api_url: str) -> tuple[dict[str, str], str | bool]:
    """The proxies and the CA bundle ``requests`` would take from the environment for a
    POST to ``api_url`` (``Session.merge_environment_settings``)."""
    proxies = requests.utils.get_environ_proxies(api_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return proxies, bundle or True


def _timeout() -> float:
    """``CMI_SALEOR_HTTP_TIMEOUT``, cut to what the request being answered has left
    (:func:`cmi_django.operations.budget`: a webhook Saleor waits for); none left:
    :class:`SaleorAPIError`, nothing sent."""
    timeout = conf.http_timeout()
    by = answer_by(None)
    if by is None:
        return timeout
    left = by - time.monotonic()
    if left <= 0:
        raise SaleorAPIError("no time left to reach Saleor within this request's wait")
    return min(timeout, left)


def _post(api_url: str, token: str, body: dict[str, Any]) -> requests.Response:
    """:func:`_post_now`; inside a request Saleor waits for
    (:func:`cmi_django.operations.budget`), given up once the budget is spent, the answer
    read or not.

    requests' timeouts bound each wait for the network, not their sum: connecting, then
    each read of the answer may take the whole timeout, and a Saleor (or a proxy) sending
    a byte just inside it keeps the call going. So inside a budget the POST and the read
    of its answer run in a worker thread (this one's context: the budget, logging) and
    this thread waits for it at most what the budget leaves, then
    :class:`SaleorAPIError`. The worker, a daemon thread holding no lock, ends when
    Saleor answers or goes silent for the cut timeout; what it sent may be recorded
    (the report stays owed, see :mod:`cmi_saleor.reports`)."""
    by = answer_by(None)
    if by is None:
        return _post_now(api_url, token, body)
    _timeout()  # no time left: SaleorAPIError, nothing sent (and no thread started)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            response = _post_now(api_url, token, body)
            _ = response.content  # the whole answer read here, not by the waiting thread
            box["response"] = response
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), name="cmi-saleor", daemon=True)
    worker.start()
    worker.join(max(0.0, by - time.monotonic()))
    if worker.is_alive():
        raise SaleorAPIError("Saleor API unreachable: Timeout (no whole answer in the time left)")
    if "error" in box:
        raise box["error"]
    response: requests.Response = box["response"]
    return response


def _post_now(api_url: str, token: str, body: dict[str, Any]) -> requests.Response:
    """One POST; once more on a broken connection (a kept-alive one Saleor closed
    meanwhile). Safe: what the app sends is idempotent (``{ app { id } }``, and
    ``transactionEventReport``, which Saleor deduplicates on the PSP reference). Each
    attempt's timeouts are cut to the request's budget (:func:`_timeout`)."""
    proxies, verify = _environment(api_url)
    for attempt in (1, 2):
        try:
            return _http().post(
                api_url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=_timeout(),
                allow_redirects=False,
                proxies=proxies,
                verify=verify,
            )
        except requests.ConnectionError as exc:
            if attempt == 2 or isinstance(exc, requests.Timeout):
                raise SaleorAPIError(f"Saleor API unreachable: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise SaleorAPIError(f"Saleor API unreachable: {type(exc).__name__}") from exc
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def execute(
    api_url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST ``query`` to Saleor with the app token; its ``data``, or :class:`SaleorAPIError`."""
    response = _post(api_url, token, {"query": query, "variables": variables or {}})
    if response.status_code != 200:
        raise SaleorAPIError(f"Saleor API answered HTTP {response.status_code}")
    try:
        body = read_object(response.content, limit=MAX_RESPONSE)
    except BadJSONError as exc:
        raise SaleorAPIError(f"Saleor API answered an unusable document ({exc})") from None
    if body.get("errors"):
        errors = body["errors"] if isinstance(body["errors"], list) else [body["errors"]]
        messages = "; ".join(
            str(e.get("message", e) if isinstance(e, dict) else e)[:200] for e in errors[:3]
        )
        raise SaleorAPIError(f"Saleor API errors: {messages}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise SaleorAPIError("Saleor API answered without data")
    return data
