"""A Saleor stand-in: keys and JWKS, webhooks signed as Saleor signs them, a GraphQL recorder.

Saleor signs webhook bodies with ``jwt.api_jws.encode(body, key, "RS256",
headers={"kid": ..., "crit": ["b64"]}, is_payload_detached=True)`` (saleor/core/jwt_manager):
a detached JWS ``<header>..<signature>`` with ``b64: false``. The JWKS is served at
``<origin>/.well-known/jwks.json`` and every GraphQL document the app sends is validated
against Saleor's own schema (``data/schema.graphql``, vendored from Saleor with its licence in
``data/LICENSE``) before it is answered.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from graphql import GraphQLSchema, build_schema, parse, validate
from jsonschema import Draft202012Validator
from jwt.algorithms import RSAAlgorithm

#: Saleor's schema and JSON Schemas, copied unchanged from Saleor (version and licence in
#: ``data/LICENSE``): part of the repository, so a bare clone runs these tests.
SALEOR_DATA = Path(__file__).resolve().parent / "data"
API_URL = "https://saleor.example.com/graphql/"
JWKS_URL = "https://saleor.example.com/.well-known/jwks.json"
APP_ID = "QXBwOjE="
APP_TOKEN = "saleor-app-token-0001"

_counter = itertools.count(1)


@functools.cache
def schema() -> GraphQLSchema:
    return build_schema((SALEOR_DATA / "schema.graphql").read_text())


def graphql_errors(document: str) -> list[str]:
    """Why Saleor would refuse ``document`` (empty when it is valid)."""
    return [e.message for e in validate(schema(), parse(document))]


JSON_SCHEMAS = {
    "PAYMENT_GATEWAY_INITIALIZE_SESSION": "PaymentGatewayInitializeSession.json",
    "TRANSACTION_INITIALIZE_SESSION": "TransactionInitializeSession.json",
    "TRANSACTION_PROCESS_SESSION": "TransactionProcessSession.json",
    "TRANSACTION_CHARGE_REQUESTED": "TransactionChargeRequested.json",
    "TRANSACTION_REFUND_REQUESTED": "TransactionRefundRequested.json",
    "TRANSACTION_CANCELATION_REQUESTED": "TransactionCancelationRequested.json",
}


@functools.cache
def _validator(event: str) -> Draft202012Validator:
    return Draft202012Validator(
        json.loads((SALEOR_DATA / "json_schemas" / JSON_SCHEMAS[event]).read_text())
    )


def response_errors(event: str, answer: Any) -> list[str]:
    """Why Saleor would refuse ``answer`` to ``event`` (empty when it accepts it)."""
    return [e.message for e in _validator(event).iter_errors(answer)]


@functools.cache
def _key(seed: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Call:
    query: str
    variables: dict[str, Any]
    token: str
    errors: list[str]

    @property
    def operation(self) -> str:
        return self.query.split("(")[0].split("{")[0].split()[-1]


@dataclass
class FakeSaleor:
    """The Saleor side of the app's conversations (install with :meth:`activate`)."""

    api_url: str = API_URL
    app_id: str = APP_ID
    token: str = APP_TOKEN
    kid: str = "saleor-key-1"
    key: rsa.RSAPrivateKey = field(default_factory=lambda: _key(1))
    calls: list[Call] = field(default_factory=list)
    jwks_fetches: int = 0
    #: None: record reports; "errors": answer INVALID; "http": answer HTTP 500;
    #: "exists": answer ALREADY_EXISTS.
    report_failure: str | None = None
    recorded: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    #: called with each report's variables as it arrives, before it is answered
    on_report: Callable[[dict[str, Any]], None] | None = None
    #: every event Saleor stored, per transaction id: (type, pspReference, amount), in order
    #: (the app's reports and the results of its answers to the sync webhooks)
    events: dict[str, list[tuple[str, str, Decimal]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def store(
        self,
        transaction_id: str,
        answer: dict[str, Any],
        request: tuple[str, Decimal] | None = None,
    ) -> None:
        """Saleor stores a sync webhook's answer as an event of the transaction.

        For a charge, refund or cancel request (``request``: the ``*_REQUEST`` event Saleor
        created before calling, and its amount), Saleor gives that request event the
        answer's pspReference and keeps it in its calculations
        (``create_transaction_event_from_request_and_webhook_response`` in
        ``saleor/payment/utils.py``); an answer without ``result`` (the schemas'
        ``...Async`` variant) adds no other event: the request stays pending.
        """
        if request is not None:
            self.events[transaction_id].append(
                (request[0], answer.get("pspReference") or "", request[1])
            )
        if answer.get("result") and answer.get("amount") is not None:
            event = (answer["result"], answer.get("pspReference") or "", Decimal(answer["amount"]))
            self.events[transaction_id].append(event)

    def pending(self, transaction_id: str) -> dict[str, Decimal]:
        """The pending amounts per family (``charge``, ``refund``...), as Saleor computes
        them (``_should_increase_pending_amount``): a ``*_REQUEST`` with a pspReference
        and no success nor failure of the same family and reference."""
        events = self.events.get(transaction_id, [])
        settled = {
            (kind.partition("_")[0], psp)
            for kind, psp, _ in events
            if kind.partition("_")[2] in ("SUCCESS", "FAILURE")
        }
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for kind, psp, amount in events:
            family, _, outcome = kind.partition("_")
            if outcome == "REQUEST" and psp and (family, psp) not in settled:
                totals[family.lower()] += amount
        return dict(totals)

    def processed(self, transaction_id: str) -> tuple[str, str, Decimal] | None:
        """The event ``transactionProcess`` answers without calling the app, if any.

        Models the ``transactionProcess`` mutation
        (``saleor/graphql/payment/mutations/transaction/transaction_process.py``,
        ``get_already_processed_event``): the first stored event of a final session
        status (``get_final_session_statuses`` in ``saleor/payment/utils.py``:
        AUTHORIZATION_ / CHARGE_ SUCCESS, FAILURE and REQUEST, as stored from the app's
        reports and answers) is returned as is, and the app is not asked again; INFO and
        *_ACTION_REQUIRED are not final.
        """
        final = {f"{k}_{o}" for k in ("AUTHORIZATION", "CHARGE") for o in ("SUCCESS", "FAILURE")}
        final |= {"AUTHORIZATION_REQUEST", "CHARGE_REQUEST"}
        return next((e for e in self.events.get(transaction_id, []) if e[0] in final), None)

    def amounts(self, transaction_id: str) -> dict[str, Decimal]:
        """The transaction's amounts as Saleor computes them from its events.

        Models ``saleor/payment/transaction_item_calculations.py``
        (``recalculate_transaction_amounts``): events are grouped by type family and
        pspReference, the latest success or failure of a reference counts (a newer failure
        wins); the newest AUTHORIZATION_ADJUSTMENT overwrites what was authorized before it;
        CHARGE_SUCCESS adds to charged and takes from authorized, CANCEL_SUCCESS adds to
        canceled and takes from authorized (never from charged), REFUND_SUCCESS adds to
        refunded and takes from charged; authorized is floored at 0, charged is not.
        """
        families = {"AUTHORIZATION": "authorized", "CHARGE": "charged", "REFUND": "refunded"}
        families["CANCEL"] = "canceled"
        takes = {"charged": "authorized", "refunded": "charged", "canceled": "authorized"}
        events = self.events.get(transaction_id, [])
        adjustments = [i for i, e in enumerate(events) if e[0] == "AUTHORIZATION_ADJUSTMENT"]
        first = adjustments[-1] if adjustments else 0
        latest: dict[tuple[str, str], tuple[str, Decimal]] = {}
        for index, (kind, psp, amount) in enumerate(events):
            family, _, outcome = kind.partition("_")
            if family not in families or outcome not in ("SUCCESS", "FAILURE"):
                continue
            if family == "AUTHORIZATION" and index < first:
                continue  # older than the newest adjustment
            latest[(family, psp)] = (outcome, amount)
        total = dict.fromkeys(("authorized", "charged", "refunded", "canceled"), Decimal(0))
        if adjustments:
            total["authorized"] = events[first][2]
        for order in ("AUTHORIZATION", "CHARGE", "REFUND", "CANCEL"):
            for (family, _psp), (outcome, amount) in latest.items():
                if family != order or outcome != "SUCCESS":
                    continue
                name = families[family]
                total[name] += amount
                if name in takes:
                    total[takes[name]] -= amount
        total["authorized"] = max(total["authorized"], Decimal(0))
        return total

    # -- HTTP --------------------------------------------------------------------------
    def activate(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.POST, self.api_url, callback=self._graphql)
        origin = self.api_url.split("/graphql/")[0]
        mock.add_callback(responses.GET, f"{origin}/.well-known/jwks.json", callback=self._jwks)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def _jwks(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.jwks_fetches += 1
        return 200, {"Content-Type": "application/json"}, json.dumps(self.jwks())

    def _graphql(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        query = body["query"]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        call = Call(query, body.get("variables") or {}, token, graphql_errors(query))
        self.calls.append(call)
        headers = {"Content-Type": "application/json"}
        if call.errors:
            return 400, headers, json.dumps({"errors": [{"message": m} for m in call.errors]})
        if token != self.token:
            return 401, headers, json.dumps({"errors": [{"message": "invalid token"}]})
        if call.operation == "CmiAppId":
            return 200, headers, json.dumps({"data": {"app": {"id": self.app_id}}})
        if call.operation == "CmiTransactionEventReport":
            return self._report(call.variables)
        return 400, headers, json.dumps({"errors": [{"message": "unexpected operation"}]})

    def _report(self, variables: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        headers = {"Content-Type": "application/json"}
        if self.on_report is not None:
            self.on_report(variables)
        if self.report_failure == "http":
            return 500, headers, "Internal Server Error"
        errors: list[dict[str, Any]] = []
        if self.report_failure == "errors":
            errors = [{"field": "id", "message": "Transaction not found", "code": "NOT_FOUND"}]
        elif self.report_failure == "exists":
            errors = [{"field": "pspReference", "message": "exists", "code": "ALREADY_EXISTS"}]
        if errors:
            answer = {"alreadyProcessed": None, "transactionEvent": None, "errors": errors}
        else:
            dedup = (
                variables["type"],
                variables["pspReference"],
                str(variables["amount"]),
                variables["id"],
            )
            already = dedup in self.recorded or self._stored(variables)
            if not already:
                kind, psp = variables["type"], variables["pspReference"]
                self.events[variables["id"]].append((kind, psp, Decimal(variables["amount"])))
            event_id = self.recorded.setdefault(dedup, f"VHJhbnNhY3Rpb25FdmVudDo{next(_counter)}")
            answer = {
                "alreadyProcessed": already,
                "transactionEvent": {"id": event_id},
                "errors": [],
            }
        return 200, headers, json.dumps({"data": {"transactionEventReport": answer}})

    def _stored(self, variables: dict[str, Any]) -> bool:
        """Saleor's deduplication (``deduplicate_event``, ``get_already_existing_event`` in
        ``saleor/payment/utils.py``): an event of the same type and pspReference already
        stored, from a report or from a sync webhook's answer, makes a report
        ``alreadyProcessed`` (same amount); INFO and *_ACTION_REQUIRED never match."""
        kind = variables["type"]
        if kind == "INFO" or kind.endswith("_ACTION_REQUIRED"):
            return False
        amount = Decimal(variables["amount"])
        return any(
            e == (kind, variables["pspReference"], amount)
            for e in self.events.get(variables["id"], [])
        )

    @property
    def reports(self) -> list[dict[str, Any]]:
        return [c.variables for c in self.calls if c.operation == "CmiTransactionEventReport"]

    # -- keys and signatures ---------------------------------------------------------------
    def rotate(self) -> None:
        """A new signing key with a new kid (the old one is gone from the JWKS)."""
        self.key = _key(int(self.kid.rsplit("-", 1)[-1]) + 1)
        self.kid = f"saleor-key-{int(self.kid.rsplit('-', 1)[-1]) + 1}"

    def sign(
        self, body: bytes, key: rsa.RSAPrivateKey | None = None, kid: str | None = None
    ) -> str:
        return jwt.api_jws.encode(
            body,
            key or self.key,
            algorithm="RS256",
            headers={"kid": kid or self.kid, "crit": ["b64"]},
            is_payload_detached=True,
        )

    def dashboard_token(self, **claims: Any) -> str:
        payload = {
            "iat": int(time.time()),
            "exp": int(time.time()) + 300,
            "iss": self.api_url,
            "type": "thirdparty",
            "app": self.app_id,
            "email": "staff@example.ma",
            "user_id": "VXNlcjox",
            "permissions": ["HANDLE_PAYMENTS"],
            "token": "abc",
        }
        payload.update(claims)
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})

    # -- webhooks ----------------------------------------------------------------------------
    def headers(self, event: str, body: bytes, **overrides: str) -> dict[str, str]:
        headers = {
            "Saleor-Event": event.lower(),
            "Saleor-Domain": "saleor.example.com",
            "Saleor-Api-Url": self.api_url,
            "Saleor-Signature": self.sign(body),
        }
        headers.update(overrides)
        return headers


# -- payloads (the ``event`` of the app's subscription queries) ------------------------------


def new_transaction() -> dict[str, Any]:
    number = next(_counter)
    return {
        "id": f"VHJhbnNhY3Rpb25JdGVtOn{number:04d}",
        "token": str(uuid.uuid4()),
        "pspReference": "",
    }


def checkout(
    channel: str = "default-channel", *, email: str | None = "amina@example.ma"
) -> dict[str, Any]:
    return {
        "__typename": "Checkout",
        "id": "Q2hlY2tvdXQ6MQ==",
        "email": email,
        "channel": {"slug": channel},
        "billingAddress": {
            "firstName": "Amina",
            "lastName": "Test",
            "companyName": "",
            "streetAddress1": "12 rue de Fès",
            "streetAddress2": "",
            "city": "RABAT",
            "cityArea": "",
            "postalCode": "10000",
            "countryArea": "",
            "phone": "+212600000000",
            "country": {"code": "MA"},
        },
        "lines": [
            {
                "id": "Q2hlY2tvdXRMaW5lOjE=",
                "quantity": 2,
                "variant": {
                    "id": "UHJvZHVjdFZhcmlhbnQ6MQ==",
                    "sku": "TEA-1",
                    "name": "250 g",
                    "product": {"name": "Thé à la menthe"},
                },
            }
        ],
    }


def recipient(app_id: str = APP_ID) -> dict[str, Any]:
    return {"id": app_id}


def session_payload(
    event: str,
    transaction: dict[str, Any],
    *,
    amount: str = "120.50",
    currency: str = "MAD",
    channel: str = "default-channel",
    data: Any = None,
    source: dict[str, Any] | None = None,
    action_type: str = "CHARGE",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "issuedAt": "2025-06-10T10:00:00+00:00",
        "version": "3.22.0",
        "recipient": recipient(),
        "transaction": transaction,
        "sourceObject": source or checkout(channel),
        "data": data,
        "merchantReference": transaction["token"],
        "action": {"amount": amount, "currency": currency, "actionType": action_type},
    }
    if event == "TRANSACTION_INITIALIZE_SESSION":
        payload["idempotencyKey"] = str(uuid.uuid4())
    return payload


def action_payload(
    transaction: dict[str, Any],
    action_type: str,
    amount: str,
    *,
    currency: str = "MAD",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A *_REQUESTED payload; Saleor created the request event just before sending it."""
    request_type = {
        "CHARGE": "CHARGE_REQUEST",
        "REFUND": "REFUND_REQUEST",
        "CANCEL": "CANCEL_REQUEST",
    }[action_type]
    events = [
        {
            "id": event_id or f"VHJhbnNhY3Rpb25FdmVudDo{next(_counter)}",
            "type": request_type,
            "pspReference": "",
            "createdAt": "2025-06-10T10:05:00+00:00",
            "amount": {"amount": float(amount), "currency": currency},
        }
    ]
    return {
        "issuedAt": "2025-06-10T10:05:00+00:00",
        "version": "3.22.0",
        "recipient": recipient(),
        "action": {"amount": amount, "currency": currency, "actionType": action_type},
        "transaction": {**transaction, "events": events},
    }
