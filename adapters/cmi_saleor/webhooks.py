"""Saleor's payment webhooks -> calls to :mod:`cmi_django.services` -> Saleor's answers.

Each handler takes the verified installation and the webhook's payload (the subscription's
``event``, :data:`cmi_saleor.graphql.SUBSCRIPTIONS`) and returns the JSON response Saleor
expects (Saleor's JSON Schemas for these events; the tests check every answer against
them). Business failures are HTTP 200 with a ``*_FAILURE`` result; nothing here raises for
bad input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from cmi_django import services
from cmi_django.models import Operation, Payment
from cmi_django.operations import OperationPendingError, accepted_anyway, budget
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.translation import gettext_noop

from cmi_core import (
    Address,
    APIError,
    CMIError,
    LineItem,
    PaymentOrder,
    PaymentState,
    TransitionError,
    get_currency,
)
from cmi_core.codes import LANGUAGES
from cmi_saleor import cache, conf
from cmi_saleor.countries import numeric_country
from cmi_saleor.hooks import (
    actions_for,
    decline_is_final,
    money,
    psp_reference,
    say,
    session_card,
)
from cmi_saleor.models import (
    ChannelConfiguration,
    PendingRequest,
    SaleorInstallation,
    TransactionMap,
)
from cmi_saleor.reports import deliver_owed

__all__ = ["HANDLERS"]

logger = logging.getLogger("cmi_saleor")

Payload = Mapping[str, Any]
Answer = dict[str, Any]
PAYMENT_METHODS = ["CARD"]


# -- reading payloads ---------------------------------------------------------------------


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and amount > 0 else None


def _channel(payload: Payload) -> str:
    return _text(_dict(_dict(payload.get("sourceObject")).get("channel")).get("slug"))


def _channel_config(
    installation: SaleorInstallation, payload: Payload, *, fresh: bool = False
) -> ChannelConfiguration | None:
    slug = _channel(payload)
    if not slug:
        return None
    return cache.channel_config(installation.pk, slug, fresh=fresh)  # secrets not loaded


def _order(
    payload: Payload, *, oid: str, amount: Decimal, currency: str, lang: str, return_url: str
) -> PaymentOrder:
    """The neutral order CMI's form is built from (guide §4.1.1)."""
    source = _dict(payload.get("sourceObject"))
    is_order = source.get("__typename") == "Order"
    email = _text(source.get("userEmail") if is_order else source.get("email"))
    address = _dict(source.get("billingAddress"))
    name = " ".join(
        p for p in (_text(address.get("firstName")), _text(address.get("lastName"))) if p
    )
    billing = None
    if address:
        billing = Address(
            street1=_text(address.get("streetAddress1")),
            street2=_text(address.get("streetAddress2")),
            city=_text(address.get("city")),
            state=_text(address.get("countryArea")),
            postal_code=_text(address.get("postalCode"))[:32],
            country=numeric_country(_text(_dict(address.get("country")).get("code"))),
            company=_text(address.get("companyName")),
        )
    items: list[LineItem] = []
    for raw in _list(source.get("lines")):
        line = _dict(raw)
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity <= 0:
            continue
        if is_order:
            description = " ".join(
                p for p in (_text(line.get("productName")), _text(line.get("variantName"))) if p
            )
            code = _text(line.get("productSku"))
        else:
            variant = _dict(line.get("variant"))
            product = _text(_dict(variant.get("product")).get("name"))
            description = " ".join(p for p in (product, _text(variant.get("name"))) if p)
            code = _text(variant.get("sku"))
        items.append(
            LineItem(
                id=_text(line.get("id"))[:128] or str(len(items) + 1),
                description=description,
                quantity=quantity,
                product_code=code[:64],
            )
        )
    phone = _text(address.get("phone"))
    label = f"order {source.get('number')}" if is_order else "checkout"
    return PaymentOrder(
        oid=oid,
        amount=amount,
        currency=currency,
        email=email,
        billing_name=name or email,
        ok_url=conf.absolute("return", kind="ok"),
        fail_url=conf.absolute("return", kind="fail"),
        callback_url=conf.absolute("callback"),
        shop_url=return_url or None,
        lang=lang,
        phone=phone if len(phone) <= 32 else "",
        billing=billing,
        items=items[:99],
        description=f"Saleor {label}",
    )


# -- answers --------------------------------------------------------------------------------


def _result(kind: str, payment: Payment | None, mode: str) -> str:
    prefix = "AUTHORIZATION" if mode == "manual" else "CHARGE"
    return f"{prefix}_{kind}"


def _failure(mode: str, message: str, amount: Any = None) -> Answer:
    answer: Answer = {"result": _result("FAILURE", None, mode), "message": message[:512]}
    if amount is not None:
        answer["amount"] = str(amount)
    return answer


def _session_answer(payment: Payment, mapping: TransactionMap | None) -> Answer:
    """The transaction's current result, from what the payment row records."""
    state = PaymentState(payment.state)
    mode = payment.capture_mode
    answer: Answer | None = None
    if state in (PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED):
        answer = {
            "result": "CHARGE_SUCCESS",
            "pspReference": psp_reference(payment),
            "amount": money(payment.captured_amount, payment),
            "message": say(payment, gettext_noop("CMI: paid")),
            "actions": actions_for(payment),
        }
    elif state is PaymentState.AUTHORISED:
        answer = {
            "result": "AUTHORIZATION_SUCCESS",
            "pspReference": psp_reference(payment),
            "amount": money(payment.authorised_amount, payment),
            "message": say(payment, gettext_noop("CMI: authorised")),
            "actions": actions_for(payment),
        }
    if answer is not None:
        card = session_card(payment)  # as the callback path reports it
        if card:
            answer["paymentMethodDetails"] = card
        return answer
    if state is PaymentState.NEEDS_ATTENTION and mapping is not None:
        # Saleor keeps a REQUEST as this session's final answer and never asks again: the
        # request is recorded, and its resolution reported when staff settle the payment
        # (hooks.resolve_requests), under this pspReference.
        family = _result("REQUEST", payment, mode).removesuffix("_REQUEST")
        request, _ = PendingRequest.objects.get_or_create(
            mapping=mapping,
            family=family,
            psp_reference=f"{payment.oid}-attention",
            defaults={"amount": payment.amount},
        )
        return {
            "result": f"{family}_REQUEST",
            "pspReference": request.psp_reference,
            "amount": money(payment.amount, payment),
            "message": say(
                payment,
                gettext_noop(
                    "CMI: the payment is being checked by the merchant; Saleor hears the"
                    " outcome when it is settled"
                ),
            ),
            "actions": [],
        }
    if state is PaymentState.VOIDED:
        return _failure(mode, "CMI: the payment was cancelled", money(payment.amount, payment))
    reason = payment.error_code or payment.proc_return_code
    if decline_is_final(payment):  # failUrl or session over: Saleor keeps this as final
        return {
            "result": _result("FAILURE", payment, mode),
            "pspReference": f"{payment.oid}-final",
            "amount": money(payment.amount, payment),
            "message": say(
                payment,
                gettext_noop("CMI: declined (%(reason)s)"),
                reason=reason or say(payment, gettext_noop("the shopper gave up")),
            )[:512],
        }
    waiting = say(payment, gettext_noop("CMI: waiting for the shopper to pay"))
    if state is PaymentState.DECLINED:  # not final: CMI's page takes another card
        waiting = say(
            payment,
            gettext_noop("CMI: declined (%(reason)s); the shopper may try another card"),
            reason=reason,
        )[:512]
    return {
        "result": _result("ACTION_REQUIRED", payment, mode),
        "pspReference": payment.oid,
        "amount": money(payment.amount, payment),
        "message": waiting,
        "data": {"oid": payment.oid, "transactionId": mapping.transaction_id if mapping else ""},
    }


# -- handlers -------------------------------------------------------------------------------


def payment_gateway_initialize(installation: SaleorInstallation, payload: Payload) -> Answer:
    """What a storefront may know before paying. Capture is not the channel
    configuration's to decide: each payment follows its ``action.actionType``
    (:func:`_capture_mode`), so the answer says that, and names the configured mode only
    as what applies when a payload carries no readable ``actionType``."""
    config = _channel_config(installation, payload)
    if config is None:
        return {"data": {"available": False, "message": "CMI is not configured for this channel"}}
    return {
        "data": {
            "available": True,
            "gateway": conf.app_id(),
            "paymentMethods": PAYMENT_METHODS,
            "environment": config.environment,
            "capture": {
                "decidedBy": "action.actionType",
                "CHARGE": "captured at once",
                "AUTHORIZATION": "authorized; captured by Saleor's charge request",
                "withoutActionType": config.capture_mode,
            },
            "languages": list(LANGUAGES),
            "defaultLanguage": config.lang,
            "flow": "redirect-form",
            "requires": ["returnUrl"],
        }
    }


#: Saleor's ``action.actionType`` (its channel's transaction flow strategy, or the
#: storefront's ``action`` argument) -> this payment's capture mode.
ACTION_MODES = {"CHARGE": "auto", "AUTHORIZATION": "manual"}


def _capture_mode(action: Payload, config: ChannelConfiguration | None) -> str:
    """What Saleor asked for decides the payment's capture mode: CHARGE -> auto
    (``ACTION=POSTAUTH`` on CMI's approval), AUTHORIZATION -> manual (capture later,
    through Saleor's charge request). Without a readable ``actionType``: the channel's
    configured mode."""
    requested = ACTION_MODES.get(_text(action.get("actionType")).upper())
    if requested is not None:
        return requested
    return config.capture_mode if config is not None else "auto"


def transaction_initialize(installation: SaleorInstallation, payload: Payload) -> Answer:
    # Read afresh: a channel disabled in another process takes no new payment meanwhile.
    config = _channel_config(installation, payload, fresh=True)
    action = _dict(payload.get("action"))
    mode = _capture_mode(action, config)
    amount = _amount(action.get("amount"))
    if config is None:
        return _failure(mode, "CMI is not configured for this channel", action.get("amount"))
    if amount is None:
        return _failure(mode, "no amount to pay")
    data = _dict(payload.get("data"))
    return_url = _text(data.get("returnUrl"))
    if not return_url or not conf.return_url_allowed(return_url):
        return _failure(mode, "data.returnUrl: an allowed absolute http(s) URL is required", amount)
    lang = _text(data.get("lang")) or config.lang
    if lang not in LANGUAGES:
        lang = config.lang
    transaction_ = _dict(payload.get("transaction"))
    transaction_id = _text(transaction_.get("id"))
    if not transaction_id or len(transaction_id) > 128:  # Payment.reference; Saleor: ~72
        return _failure(mode, "no transaction in the payload", amount)
    try:
        currency = get_currency(_text(action.get("currency"))).numeric
        with transaction.atomic():
            oid = services.new_oid("SAL")
            order = _order(
                payload, oid=oid, amount=amount, currency=currency, lang=lang, return_url=return_url
            )
            payment, request = services.create_payment(
                platform="saleor",
                reference=transaction_id,
                order=order,
                config_key=config.config_key,
                data={"saleor_api_url": installation.saleor_api_url, "channel": config.channel},
            )
            if payment.capture_mode != mode:  # Saleor's actionType, not the channel's mode
                payment.capture_mode = mode
                payment.save(update_fields=["capture_mode"])
            source = _dict(payload.get("sourceObject"))
            TransactionMap.objects.create(
                oid=payment.oid,
                payment=payment,
                installation=installation,
                saleor_api_url=installation.saleor_api_url,
                channel=config.channel,
                transaction_id=transaction_id,
                transaction_token=_text(transaction_.get("token"))[:64],
                merchant_reference=_text(payload.get("merchantReference"))[:255],
                source_type=_text(source.get("__typename")).lower()[:16],
                source_id=_text(source.get("id"))[:255],
                return_url=return_url,
            )
    except ImproperlyConfigured as exc:  # first: DecryptionError is a CMIError too
        logger.error("CMI channel configuration %s is broken: %s", config.pk, exc)
        return _failure(mode, "CMI is misconfigured for this channel", amount)
    except CMIError as exc:  # ValidationError: a field CMI would refuse (e.g. no e-mail)
        return _failure(mode, f"CMI cannot take this payment: {exc}", amount)
    return {
        "result": _result("ACTION_REQUIRED", payment, payment.capture_mode),
        "pspReference": payment.oid,
        "amount": money(payment.amount, payment),
        "message": "Post data.fields to data.action (CMI's payment page)",
        "data": {
            "action": request.action,
            "method": "POST",
            "fields": request.as_dict(),
            "oid": payment.oid,
            "transactionId": transaction_id,
        },
    }


def _mapping_for(installation: SaleorInstallation, payload: Payload) -> TransactionMap | None:
    """The transaction's CMI payment: a paid one first, else the latest attempt."""
    transaction_id = _text(_dict(payload.get("transaction")).get("id"))
    mappings = list(
        TransactionMap.objects.select_related("payment").filter(
            installation=installation, transaction_id=transaction_id
        )[:20]
    )
    paid = [m for m in mappings if PaymentState(m.payment.state).is_paid]
    return (paid or mappings)[0] if mappings else None


def transaction_process(installation: SaleorInstallation, payload: Payload) -> Answer:
    mapping = _mapping_for(installation, payload)
    action = _dict(payload.get("action"))
    if mapping is None:
        return _failure("auto", "unknown transaction", action.get("amount"))
    payment = mapping.payment
    # CMI's status call and the owed reports share the time Saleor waits for this answer:
    # a report not sent by then stays owed (the next call, the sweeper).
    with budget(conf.action_within()):
        if payment.state == PaymentState.REDIRECTED.value:
            _ask_cmi(payment)  # no callback yet: CMI's status API, when there is an API user
        deliver_owed(mapping)  # a report Saleor did not record when it was made (hooks.py)
    return _session_answer(payment, mapping)


def _ask_cmi(payment: Payment) -> None:
    """No callback yet: CMI's status API, asked within the budget Saleor's wait leaves
    (``CMI_SALEOR_ACTION_WITHIN``). An approval learned there goes through
    :func:`cmi_django.services.approve_without_callback` (inside ``refresh``): manual
    capture from then on, and in auto mode captured through the API after the commit
    (``key="saleor-process-capture"``), before this answer is built."""
    try:
        # source "saleor-process": a platform's own call, so the hook reports nothing (our
        # answer carries the result to Saleor)
        services.refresh(
            payment,
            user="saleor: transactionProcess",
            source="saleor-process",
            within=conf.action_within(),
        )
    except (CMIError, ImproperlyConfigured) as exc:
        logger.info("status of %s not available from CMI: %s", payment.oid, exc)
    payment.refresh_from_db()


def _idempotency_key(payload: Payload, request_type: str, amount: Decimal | None) -> str:
    """Saleor's request event id (stable across Saleor's retries), else its fields."""
    transaction_ = _dict(payload.get("transaction"))
    found = ""
    latest = ""
    for raw in _list(transaction_.get("events")):
        event = _dict(raw)
        if event.get("type") != request_type:
            continue
        event_amount = _amount(_dict(event.get("amount")).get("amount"))
        if amount is not None and event_amount != amount:
            continue
        created = _text(event.get("createdAt"))
        if created >= latest:
            latest, found = created, _text(event.get("id"))
    if found:
        return f"saleor-event:{found}"[:128]
    parts = (
        request_type,
        _text(transaction_.get("pspReference")),
        str(amount),
        _text(payload.get("issuedAt")),
    )
    return "saleor:" + ":".join(parts)[:120]


def _operation_answer(prefix: str, payment: Payment, operation: Operation) -> Answer:
    """``<prefix>_SUCCESS`` of what CMI did. An operation some delivery was answered
    pending about keeps that answer's reference: its resolution is reported under it
    (hooks.resolve_requests), and Saleor, which deduplicates on type and pspReference,
    would add the same money twice under two (a pending answer Saleor never got, its
    next delivery answered after the operation settled)."""
    response = operation.response if isinstance(operation.response, dict) else {}
    amount = operation.amount if operation.amount is not None else payment.authorised_amount
    pending = (
        PendingRequest.objects.filter(operation=operation)
        .values_list("psp_reference", flat=True)
        .first()
    )
    return {
        "result": f"{prefix}_SUCCESS",
        "pspReference": pending or str(response.get("trans_id") or "") or psp_reference(payment),
        "amount": money(amount, payment),
        "message": f"CMI accepted the {operation.kind}",
        "actions": actions_for(payment),
    }


#: Saleor's request family -> the kind of :class:`~cmi_django.models.Operation` it sends.
_KINDS = {"CHARGE": "capture", "REFUND": "refund", "CANCEL": "void"}


def _pending_answer(
    prefix: str, mapping: TransactionMap, key: str, amount: Decimal | None
) -> Answer | None:
    """The answer for a request whose own operation is still open (pending after the
    wait, or ``unknown``: CMI may have acted), else None.

    ``*_FAILURE`` would be wrong (CMI may have moved the money) and ``*_SUCCESS`` too
    (it may not). Saleor's response schemas accept a pending answer for these requests:
    ``{"pspReference": ...}`` without ``result`` (the ``...Async`` variant); Saleor then
    keeps its ``*_REQUEST`` event with that pspReference, shown as pending, and the app
    reports ``*_SUCCESS`` or ``*_FAILURE`` under the same reference when the operation
    settles (``cmi_reconcile``, a refresh: :func:`cmi_saleor.hooks.resolve_requests`).
    Another request's open operation is not this one: that one gets its failure (it was
    not sent; Saleor may ask again)."""
    payment = mapping.payment
    operation = (
        payment.operations.filter(kind=_KINDS[prefix], key=key, state__in=Operation.OPEN)
        .order_by("-id")
        .first()
    )
    if operation is None:
        return None
    request, _ = PendingRequest.objects.get_or_create(
        operation=operation,
        defaults={
            "mapping": mapping,
            "family": prefix,
            "psp_reference": f"{payment.oid}-{operation.kind}-{operation.pk}",
            "amount": operation.amount or amount or payment.authorised_amount,
        },
    )
    return {"pspReference": request.psp_reference, "actions": []}


def _unusable_amount(action: Payload, amount: Decimal | None, payment: Payment) -> str:
    """Why a charge's or a refund's ``action`` cannot be acted on, or "".

    Saleor always says how much, in the transaction's currency: an amount missing, not a
    number, zero or negative, or in another currency than the payment's, is not guessed
    (an unreadable charge amount used to capture the whole authorisation).
    """
    if amount is None:
        return "no usable amount in the request (a positive number is required)"
    currency = _text(action.get("currency"))
    if currency:
        try:
            same = get_currency(currency).numeric == payment.currency
        except CMIError:
            same = False
        if not same:
            return f"the request's currency {currency[:8]!r} is not this payment's"
    return ""


def _refused(
    prefix: str,
    mapping: TransactionMap,
    key: str,
    amount: Decimal | None,
    *,
    failure: Answer,
    exc: Exception,
) -> Answer:
    """The answer when the request's call raised and no operation of it succeeded:
    pending while its own operation is open (CMI may have acted), else its failure."""
    payment = mapping.payment
    if isinstance(exc, OperationPendingError):  # this request's own call may have moved money
        pending = _pending_answer(prefix, mapping, key, amount)
        return pending or {**failure, "message": f"not possible now: {exc.reason}"[:512]}
    if isinstance(exc, TransitionError):
        return {**failure, "message": f"not possible now: {exc.reason}"[:512]}
    if isinstance(exc, APIError):  # CMI's answer lost after sending: its operation is "unknown"
        pending = _pending_answer(prefix, mapping, key, amount)
        reason = exc.error_code or exc.err_msg or exc
        return pending or {**failure, "message": f"CMI refused: {reason}"[:512]}
    if isinstance(exc, (CMIError, ImproperlyConfigured)):
        logger.error("%s for %s failed: %s", prefix, payment.oid, exc)
        return {**failure, "message": f"failed: {type(exc).__name__}"}
    # anything else (a bug, the database): answered from what was recorded, never a 500
    logger.error("%s for %s: unexpected error", prefix, payment.oid, exc_info=exc)
    payment.refresh_from_db()
    pending = _pending_answer(prefix, mapping, key, amount)
    return pending or {**failure, "message": f"failed: {type(exc).__name__}"}


def _operate(
    prefix: str,
    request_type: str,
    call: Callable[[Payment, Decimal | None, str], Operation],
    installation: SaleorInstallation,
    payload: Payload,
) -> Answer:
    action = _dict(payload.get("action"))
    amount = _amount(action.get("amount"))
    mapping = _mapping_for(installation, payload)
    failure = {"result": f"{prefix}_FAILURE"}
    if action.get("amount") is not None:
        failure["amount"] = str(action.get("amount"))
    if mapping is None:
        return {**failure, "message": "unknown transaction"}
    payment = mapping.payment
    failure["pspReference"] = psp_reference(payment)
    if prefix != "CANCEL":  # a void takes no amount: the whole authorisation is cancelled
        refused = _unusable_amount(action, amount, payment)
        if refused:
            return {**failure, "message": refused}
    key = _idempotency_key(payload, request_type, amount)
    try:
        operation = call(payment, amount, key)  # source="platform": the answer tells Saleor
    except Exception as exc:  # noqa: BLE001 - answered to Saleor, never a 500
        # First what was recorded: whatever raised after CMI accepted must not tell
        # Saleor the money did not move.
        done = accepted_anyway(payment, _KINDS[prefix], exc, label=f"Saleor {prefix}", key=key)
        if done is not None:
            return _operation_answer(prefix, payment, done)
        return _refused(prefix, mapping, key, amount, failure=failure, exc=exc)
    payment.refresh_from_db()
    return _operation_answer(prefix, payment, operation)


def transaction_charge(installation: SaleorInstallation, payload: Payload) -> Answer:
    return _operate(
        "CHARGE",
        "CHARGE_REQUEST",
        lambda p, amount, key: services.capture(
            p, amount, user="saleor", key=key, source="platform", within=conf.action_within()
        ),
        installation,
        payload,
    )


def transaction_refund(installation: SaleorInstallation, payload: Payload) -> Answer:
    def call(payment: Payment, amount: Decimal | None, key: str) -> Operation:
        if amount is None:
            raise TransitionError(payment.state, "refund", "no amount to refund")
        return services.refund(
            payment, amount, user="saleor", key=key, source="platform", within=conf.action_within()
        )

    return _operate("REFUND", "REFUND_REQUEST", call, installation, payload)


def transaction_cancel(installation: SaleorInstallation, payload: Payload) -> Answer:
    """Void the authorisation. Refused once money is captured: Saleor would book the
    void as a canceled authorization and still show the capture as charged; a refund
    is what gives captured money back in Saleor's books."""
    mapping = _mapping_for(installation, payload)
    if mapping is not None and mapping.payment.captured_amount:
        payment = mapping.payment
        answer: Answer = {
            "result": "CANCEL_FAILURE",
            "pspReference": psp_reference(payment),
            "message": say(
                payment,
                gettext_noop(
                    "CMI captured %(amount)s: captured money can only be refunded (ask for"
                    " a refund)"
                ),
                amount=payment.captured_amount,
            ),
        }
        amount = _dict(payload.get("action")).get("amount")
        if amount is not None:
            answer["amount"] = str(amount)
        return answer
    return _operate(
        "CANCEL",
        "CANCEL_REQUEST",
        lambda p, amount, key: services.void(
            p,
            user="saleor",
            key=key,
            source="platform",
            uncaptured=True,
            within=conf.action_within(),
        ),
        installation,
        payload,
    )


HANDLERS: dict[str, Callable[[SaleorInstallation, Payload], Answer]] = {
    "PAYMENT_GATEWAY_INITIALIZE_SESSION": payment_gateway_initialize,
    "TRANSACTION_INITIALIZE_SESSION": transaction_initialize,
    "TRANSACTION_PROCESS_SESSION": transaction_process,
    "TRANSACTION_CHARGE_REQUESTED": transaction_charge,
    "TRANSACTION_REFUND_REQUESTED": transaction_refund,
    "TRANSACTION_CANCELATION_REQUESTED": transaction_cancel,
}
