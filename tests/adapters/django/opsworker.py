"""One shop process for the multi-process money tests (``test_money_once.py``).

``python -m tests.adapters.django.opsworker '<json>'`` configures Django like
``tests.adapters.django.settings`` but on the database and CMI configuration it is given,
prints ``ready``, waits for the ``go`` file (so that every process starts its request at
the same moment), does one thing (or each of its ``steps``) and prints one JSON line: what happened.

Actions: ``migrate``; ``setup`` (a payment in a given state); ``refund``, ``capture``,
``void`` (through :mod:`cmi_django.services`); ``form`` (a dashboard's staff form POST
through :func:`cmi_django.actions.posted_staff_action`); ``callback`` (a signed callback
POSTed to the callback view); ``die`` (a refund whose process dies after CMI answered,
before the shop recorded it); ``probe`` (a refund that, while CMI is being called, writes to
the database from a second connection); ``reconcile``; ``report``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any


def configure(spec: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    from tests.adapters.django import settings as base

    values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    values["DATABASES"] = {"default": spec["db"]}
    values["CMI_PAYMENTS"] = {"default": spec["cmi"]}
    settings.configure(**values)
    django.setup()


def say(line: str) -> None:
    """One line to the test that started this process, at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_go(spec: dict[str, Any]) -> None:
    say("ready")
    go = spec.get("go")
    if not go:
        return
    deadline = time.monotonic() + 30
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("no go signal")
        time.sleep(0.002)


def outcome(call: Any) -> dict[str, Any]:
    try:
        operation = call()
    except Exception as exc:  # noqa: BLE001 - reported to the test, which decides
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)[:300]}
    return {"ok": True, "operation": getattr(operation, "pk", None)}


def probe_write(db: dict[str, Any], payment_pk: int) -> str:
    """Write to the payment's row from a second connection, waiting at most 1 s for locks."""
    if db["ENGINE"].endswith("sqlite3"):
        import sqlite3

        other = sqlite3.connect(db["NAME"], timeout=1.0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE cmi_django_payment SET email = email WHERE id = ?", (payment_pk,))
            other.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            return f"locked: {exc}"
        finally:
            other.close()
        return "written"
    import psycopg

    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=db["NAME"],
        autocommit=True,
    ) as other:
        try:
            other.execute("SET lock_timeout = '1s'")
            other.execute(
                "UPDATE cmi_django_payment SET email = email WHERE id = %s", (payment_pk,)
            )
        except psycopg.errors.LockNotAvailable as exc:
            return f"locked: {exc}"
    return "written"


def act(spec: dict[str, Any]) -> dict[str, Any]:
    from cmi_django import operations, services
    from cmi_django.models import Operation, Payment

    action = spec["action"]
    if action == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return {"ok": True}
    if action == "setup":
        from tests.adapters.django.conftest import order

        payment, _ = services.create_payment(platform="test", reference="ops", order=order())
        amount = payment.amount
        state = spec.get("state", "captured")
        Payment.objects.filter(pk=payment.pk).update(
            state=state,
            authorised_amount=0 if state == "redirected" else amount,
            captured_amount=amount if state == "captured" else 0,
        )
        return {"ok": True, "pk": payment.pk, "oid": payment.oid, "amount": str(amount)}
    payment = Payment.objects.get(pk=spec["pk"])
    amount = Decimal(spec["amount"]) if spec.get("amount") else None
    key = spec.get("key")
    wait_for_go(spec)
    if action == "refund":
        assert amount is not None
        return outcome(lambda: services.refund(payment, amount, user="w", key=key))
    if action == "capture":
        return outcome(lambda: services.capture(payment, amount, user="w", key=key))
    if action == "void":
        return outcome(lambda: services.void(payment, user="w", key=key))
    if action == "form":
        from cmi_django.actions import posted_staff_action
        from django.contrib.auth.models import AnonymousUser
        from django.test import RequestFactory

        request = RequestFactory().post("/", {"amount": spec["amount"], "key": key})
        request.user = AnonymousUser()
        result = posted_staff_action(request, payment, "refund")
        return {"ok": result.ok, "message": str(result.message)}
    if action == "sign":
        from urllib.parse import urlencode

        from tests.adapters.django.conftest import callback_for

        return {"ok": True, "body": urlencode(callback_for(payment, trans_id="T-RACE"))}
    if action == "callback":
        from django.test import Client

        response = Client().post(
            "/cmi/callback/",
            data=spec["body"],
            content_type="application/x-www-form-urlencoded",
        )
        return {"ok": response.status_code == 200, "reply": response.content.decode()}
    if action in ("die", "probe"):
        assert amount is not None
        if action == "die":

            def dead(*args: Any, **kwargs: Any) -> Any:
                os._exit(3)  # the process dies: CMI answered, nothing recorded

            operations._record = dead  # type: ignore[assignment]
        else:
            from cmi_core import CMIClient

            real = CMIClient.refund
            seen: dict[str, str] = {}

            def refund(self: Any, *args: Any, **kwargs: Any) -> Any:
                seen["write"] = probe_write(spec["db"], payment.pk)
                return real(self, *args, **kwargs)

            CMIClient.refund = refund  # type: ignore[method-assign]
            done = outcome(lambda: services.refund(payment, amount, user="w", key=key))
            return {**done, "write": seen.get("write", "")}
        return outcome(lambda: services.refund(payment, amount, user="w", key=key))
    if action == "reconcile":
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        try:
            call_command("cmi_reconcile", stdout=out, stderr=out)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            return {"ok": False, "error": type(exc).__name__, "output": out.getvalue()}
        return {"ok": True, "output": out.getvalue()}
    if action == "report":
        from tests.adapters.django.testapp.models import HookCall

        payment.refresh_from_db()
        operations = [
            {
                "kind": o.kind,
                "amount": str(o.amount),
                # (before Operation.state existed: what ``succeeded`` said)
                "state": getattr(o, "state", "succeeded" if o.succeeded else "failed"),
                "key": o.key,
            }
            for o in Operation.objects.filter(payment=payment).order_by("id")
        ]
        hooks = list(HookCall.objects.filter(oid=payment.oid).values_list("method", flat=True))
        return {
            "ok": True,
            "state": payment.state,
            "captured": str(payment.captured_amount),
            "refunded": str(payment.refunded_amount),
            "operations": operations,
            "hooks": hooks,
        }
    if action == "age":
        from datetime import timedelta

        from django.utils import timezone

        old = timezone.now() - timedelta(hours=1)
        Operation.objects.filter(payment=payment).update(created_at=old)
        return {"ok": True}
    raise ValueError(f"unknown action {action!r}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    configure(spec)
    if "steps" in spec:  # several actions, one after the other, in this one process
        results = [act({**spec, **step}) for step in spec["steps"]]
        say(json.dumps({"ok": True, "steps": results}))
    else:
        say(json.dumps(act(spec)))


if __name__ == "__main__":
    main()
