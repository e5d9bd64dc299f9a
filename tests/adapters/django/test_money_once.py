"""Money moves exactly once, from several processes at once, on SQLite and PostgreSQL.

Each test starts shop processes (``opsworker.py``) on one database file (SQLite, the normal
pass) or one PostgreSQL database (dev.py's PostgreSQL pass), with the emulator as CMI,
releases them together, then compares the emulator's ledger (its storage) with the
shop's :class:`~cmi_django.models.Operation` rows. A last group checks, in one process,
what an open operation blocks and how ``cmi_reconcile`` settles one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.sandbox.results import new_ids
from tests.adapters.dbsettings import database_settings, sqlite_database, using_postgres

ROOT = Path(__file__).resolve().parents[3]
AMOUNT = Decimal("120.50")
PROCESSES = 4

pytestmark = [pytest.mark.postgres] if using_postgres() else []


# The shop's processes -------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _last_line(out: str, err: str) -> dict[str, Any]:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"worker said nothing: {out[-500:]} {err[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """One worker, to its end."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.adapters.django.opsworker", json.dumps(spec)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        return {"ok": False, "exit": done.returncode, "stderr": done.stderr[-2000:]}
    return _last_line(done.stdout, done.stderr)


def together(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start every worker, wait until each is ready, then release them at once."""
    with tempfile.TemporaryDirectory() as folder:
        go = Path(folder) / "go"
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.adapters.django.opsworker",
                    json.dumps({**spec, "go": str(go)}),
                ],
                cwd=ROOT,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for spec in specs
        ]
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        go.touch()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            results.append(_last_line(out, err))
    return results


# The database and CMI ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_db() -> Iterator[dict[str, Any]]:
    """A fresh, migrated database the worker processes share."""
    if using_postgres():
        import psycopg

        base = database_settings()["default"]
        name = f"cmi_ops_{uuid.uuid4().hex[:10]}"
        admin = {
            "host": base["HOST"],
            "port": base["PORT"],
            "user": base["USER"],
            "password": base["PASSWORD"],
            "dbname": base["NAME"],
        }
        with psycopg.connect(**admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        db = {**base, "NAME": name}
        try:
            assert run({"db": db, "cmi": {}, "action": "migrate"})["ok"]
            yield db
        finally:
            with psycopg.connect(**admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite_database(str(Path(folder) / "shop.sqlite3"))
        assert run({"db": db, "cmi": {}, "action": "migrate"}) == {"ok": True}
        yield db


@pytest.fixture
def cmi(sandbox: Sandbox) -> dict[str, Any]:
    """The shop's CMI configuration: the emulator, with its API user."""
    return {
        "CLIENT_ID": DEFAULT_MERCHANT.client_id,
        "STORE_KEY": DEFAULT_MERCHANT.store_key,
        "API_USERNAME": DEFAULT_MERCHANT.api_username,
        "API_PASSWORD": DEFAULT_MERCHANT.api_password,
        "BASE_URL": sandbox.base_url,
        "CAPTURE_MODE": "manual",
    }


def captured_payment(sandbox: Sandbox, db: dict[str, Any], cmi: dict[str, Any]) -> dict[str, Any]:
    """A payment captured in the shop and at the emulator (PreAuth then PostAuth)."""
    made = run({"db": db, "cmi": cmi, "action": "setup", "state": "captured"})
    assert made["ok"], made
    store, now = sandbox.store, sandbox.ledger.clock.now()
    order = store.ensure_order(
        DEFAULT_MERCHANT.client_id,
        made["oid"],
        currency="504",
        amount=AMOUNT,
        email="client@example.ma",
        bill_to_name="Amina Test",
        now=now,
    )
    for kind in ("PreAuth", "PostAuth"):
        ids = new_ids(now)
        store.add_transaction(
            order.id,
            kind,
            AMOUNT,
            now,
            trans_id=ids.trans_id,
            host_ref_num=ids.host_ref_num,
            auth_code=ids.auth_code,
        )
    store.update_order(order.id, now, state="POST", authorized=AMOUNT, captured=AMOUNT)
    return {"db": db, "cmi": cmi, "pk": made["pk"], "oid": made["oid"]}


def cmi_credits(sandbox: Sandbox, oid: str) -> list[Decimal]:
    """The refunds CMI made (the emulator's ledger)."""
    order = sandbox.store.get_order(DEFAULT_MERCHANT.client_id, oid)
    assert order is not None
    return [
        t.amount
        for t in sandbox.store.transactions(order.id)
        if t.type == "Credit" and t.response == "Approved"
    ]


def steps(payment: dict[str, Any], *actions: dict[str, Any]) -> list[dict[str, Any]]:
    """Several actions in one worker process, one after the other."""
    done = run({**payment, "action": "steps", "steps": list(actions)})
    assert done["ok"], done
    results: list[dict[str, Any]] = done["steps"]
    return results


def report(payment: dict[str, Any]) -> dict[str, Any]:
    found = run({**payment, "action": "report"})
    assert found["ok"], found
    return found


def shop_refunds(found: dict[str, Any]) -> list[Decimal]:
    return [
        Decimal(o["amount"])
        for o in found["operations"]
        if o["kind"] == "refund" and o["state"] == "succeeded"
    ]


# Several processes at once ---------------------------------------------------------------------


def test_same_refund_from_several_processes_is_sent_once(
    sandbox: Sandbox, shop_db: dict[str, Any], cmi: dict[str, Any]
) -> None:
    payment = captured_payment(sandbox, shop_db, cmi)
    spec = {**payment, "action": "refund", "amount": "20.00", "key": "refund-same"}
    results = together([spec] * PROCESSES)
    assert cmi_credits(sandbox, payment["oid"]) == [Decimal("20.00")]
    found = report(payment)
    assert shop_refunds(found) == [Decimal("20.00")]
    assert Decimal(found["refunded"]) == Decimal("20.00")
    assert found["hooks"] == ["refunded"]
    # each waited for the first one's answer: all got the one refund, none was refused
    assert all(r["ok"] for r in results), results
    assert len({r["operation"] for r in results}) == 1, results


def test_refunds_with_different_keys_never_exceed_what_was_captured(
    sandbox: Sandbox, shop_db: dict[str, Any], cmi: dict[str, Any]
) -> None:
    payment = captured_payment(sandbox, shop_db, cmi)
    specs = [
        {**payment, "action": "refund", "amount": "50.00", "key": f"refund-{n}"}
        for n in range(PROCESSES)
    ]
    results = together(specs)
    credits = cmi_credits(sandbox, payment["oid"])
    found = report(payment)
    assert credits == [Decimal("50.00")] * 2  # 3 x 50 > 120.50
    assert sorted(shop_refunds(found)) == credits  # CMI refunds = shop records
    assert Decimal(found["refunded"]) == sum(credits)
    assert found["hooks"] == ["refunded", "refunded"]
    refused = [r for r in results if not r["ok"]]
    assert len(refused) == PROCESSES - 2
    # refused by the shop before any call (CMI's own refusal would be an APIError)
    assert {r["error"] for r in refused} <= {"TransitionError", "OperationPendingError"}, results


def test_double_submitted_staff_form_refunds_once(
    sandbox: Sandbox, shop_db: dict[str, Any], cmi: dict[str, Any]
) -> None:
    payment = captured_payment(sandbox, shop_db, cmi)
    key = f"refund-{uuid.uuid4().hex}"  # what the rendered form's hidden field carries
    spec = {**payment, "action": "form", "amount": "20.00", "key": key}
    results = together([spec] * 3)
    assert cmi_credits(sandbox, payment["oid"]) == [Decimal("20.00")]
    found = report(payment)
    assert shop_refunds(found) == [Decimal("20.00")]
    assert Decimal(found["refunded"]) == Decimal("20.00")
    assert all(r["ok"] for r in results), results  # done, or "already done"
    assert not any("could not record" in r["message"] for r in results), results


def test_duplicate_callbacks_from_several_processes_capture_once(
    shop_db: dict[str, Any],
) -> None:
    cmi = {"CLIENT_ID": "600000001", "STORE_KEY": "TEST-STORE-KEY-0001", "CAPTURE_MODE": "auto"}
    made = run({"db": shop_db, "cmi": cmi, "action": "setup", "state": "redirected"})
    payment = {"db": shop_db, "cmi": cmi, "pk": made["pk"]}
    body = run({**payment, "action": "sign"})["body"]
    results = together([{**payment, "action": "callback", "body": body}] * PROCESSES)
    replies = [r["reply"] for r in results]
    assert replies == ["ACTION=POSTAUTH"] * PROCESSES  # none "database is locked" (FAILURE)
    found = report(payment)
    assert (found["state"], Decimal(found["captured"])) == ("captured", AMOUNT)
    assert sorted(found["hooks"]) == ["authorised", "captured"]


# A process that dies, a lock that is not held -----------------------------------------------


def test_process_dying_after_cmi_answered_leaves_a_pending_refund_reconcile_settles(
    sandbox: Sandbox, shop_db: dict[str, Any], cmi: dict[str, Any]
) -> None:
    payment = captured_payment(sandbox, shop_db, cmi)
    died = run({**payment, "action": "die", "amount": "20.00", "key": "refund-die"})
    assert died.get("exit") == 3, died
    assert cmi_credits(sandbox, payment["oid"]) == [Decimal("20.00")]
    dead, _, again, other, reconciled, found = steps(
        payment,
        {"action": "report"},
        {"action": "age"},  # its call's deadline is long past
        {"action": "refund", "amount": "20.00", "key": "refund-die"},
        {"action": "refund", "amount": "101.00", "key": "refund-other"},
        {"action": "reconcile"},
        {"action": "report"},
    )
    assert [(o["kind"], o["state"]) for o in dead["operations"]] == [("refund", "pending")]
    assert Decimal(dead["refunded"]) == 0
    assert again["error"] == "OperationPendingError", again  # the same key is not re-sent
    assert other["error"] == "TransitionError", other  # 20 is promised: 100.50 is left
    assert reconciled["ok"], reconciled
    assert "refund 20.000 (key refund-die) settled as succeeded" in reconciled["output"]
    assert cmi_credits(sandbox, payment["oid"]) == [Decimal("20.00")]  # not sent again
    assert shop_refunds(found) == [Decimal("20.00")]
    assert (found["state"], Decimal(found["refunded"])) == ("partially_refunded", Decimal(20))
    assert found["hooks"] == ["refunded"]


def test_no_lock_is_held_while_cmi_is_called(
    sandbox: Sandbox, shop_db: dict[str, Any], cmi: dict[str, Any]
) -> None:
    payment = captured_payment(sandbox, shop_db, cmi)
    probed = run({**payment, "action": "probe", "amount": "20.00", "key": "refund-probe"})
    assert probed["ok"], probed
    assert probed["write"] == "written"  # another connection wrote during CMI's call
    assert cmi_credits(sandbox, payment["oid"]) == [Decimal("20.00")]


# In one process: what an open operation blocks, how it is settled -----------------------------


def seed_order(sandbox: Sandbox, oid: str, *, captured: bool) -> None:
    """The order at the emulator: PreAuth, and PostAuth when ``captured``."""
    store, now = sandbox.store, sandbox.ledger.clock.now()
    order = store.ensure_order(
        DEFAULT_MERCHANT.client_id,
        oid,
        currency="504",
        amount=AMOUNT,
        email="client@example.ma",
        bill_to_name="Amina Test",
        now=now,
    )
    for kind in ("PreAuth", "PostAuth") if captured else ("PreAuth",):
        ids = new_ids(now)
        store.add_transaction(
            order.id,
            kind,
            AMOUNT,
            now,
            trans_id=ids.trans_id,
            host_ref_num=ids.host_ref_num,
            auth_code=ids.auth_code,
        )
    state = {"state": "POST", "captured": AMOUNT} if captured else {"state": "PRE"}
    store.update_order(order.id, now, authorized=AMOUNT, **state)


def ledger(sandbox: Sandbox, oid: str) -> list[str]:
    order = sandbox.store.get_order(DEFAULT_MERCHANT.client_id, oid)
    assert order is not None
    return [t.type for t in sandbox.store.transactions(order.id)]


@pytest.fixture
def local_payment(captured: Any) -> Any:
    """A payment captured in this process's test database and at the emulator."""
    return captured


def open_operation(payment: Any, kind: str, state: str, amount: Decimal | None, **more: Any) -> Any:
    from cmi_django.models import Operation

    return Operation.objects.create(
        payment=payment, kind=kind, amount=amount, state=state, key=f"{kind}-open", **more
    )


@pytest.mark.django_db
def test_an_open_capture_blocks_void_capture_and_refund_before_cmi(
    sandbox_settings: Sandbox, make_payment: Any
) -> None:
    from cmi_django import services
    from cmi_django.models import Payment

    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(state="authorised", authorised_amount=AMOUNT)
    payment.refresh_from_db()
    seed_order(sandbox_settings, payment.oid, captured=False)
    open_operation(payment, "capture", "unknown", AMOUNT)
    with pytest.raises(services.OperationPendingError, match="capture of this payment is unknown"):
        services.void(payment, key="void-1")
    with pytest.raises(services.OperationPendingError):
        services.capture(payment, key="capture-2")
    assert ledger(sandbox_settings, payment.oid) == ["PreAuth"]  # nothing was sent
    assert payment.operations.count() == 1


@pytest.mark.django_db
def test_refresh_leaves_a_refund_whose_call_may_still_run_alone(
    sandbox_settings: Sandbox, local_payment: Any
) -> None:
    from cmi_django import services

    pending = open_operation(local_payment, "refund", "pending", Decimal(20))
    with pytest.raises(services.OperationPendingError, match="refresh again"):
        services.refresh(local_payment)
    pending.refresh_from_db()
    assert pending.state == "pending"
    assert (local_payment.state, local_payment.refunded_amount) == ("captured", 0)
    assert ledger(sandbox_settings, local_payment.oid) == ["PreAuth", "PostAuth"]


@pytest.mark.django_db
def test_reconcile_settles_a_refund_cmi_never_made_as_failed_without_sending_it(
    sandbox_settings: Sandbox, local_payment: Any
) -> None:
    from datetime import timedelta

    from cmi_django import services
    from cmi_django.models import Operation
    from django.core.management import call_command
    from django.utils import timezone

    pending = open_operation(local_payment, "refund", "pending", Decimal(20))
    Operation.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(hours=1))
    call_command("cmi_reconcile", stdout=StringIO())
    pending.refresh_from_db()
    assert (pending.state, pending.succeeded) == ("failed", False)
    assert "nothing was re-sent" in pending.error
    assert ledger(sandbox_settings, local_payment.oid) == ["PreAuth", "PostAuth"]
    local_payment.refresh_from_db()
    assert (local_payment.state, local_payment.refunded_amount) == ("captured", 0)
    # settled: the whole amount is refundable again, and is refunded once
    services.refund(local_payment, AMOUNT, key="refund-after")
    assert ledger(sandbox_settings, local_payment.oid) == ["PreAuth", "PostAuth", "Credit"]


@pytest.mark.django_db
def test_no_usable_answer_leaves_the_refund_unknown_and_it_is_never_resent(
    sandbox_settings: Sandbox, local_payment: Any
) -> None:
    import responses
    from cmi_django import services
    from cmi_django.config import get_config
    from django.core.management import call_command

    from cmi_core import APITransportError

    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, get_config().api_url, body="<html>proxy error</html>")
        with pytest.raises(APITransportError):
            services.refund(local_payment, Decimal(20), key="refund-x")
    operation = local_payment.operations.get(key="refund-x")
    assert (operation.state, operation.succeeded) == ("unknown", False)
    with pytest.raises(services.OperationPendingError, match="already sent to CMI"):
        services.refund(local_payment, Decimal(20), key="refund-x")
    assert ledger(sandbox_settings, local_payment.oid) == ["PreAuth", "PostAuth"]
    # CMI may still make it until its call's deadline has passed: left for the next run
    call_command("cmi_reconcile", stdout=StringIO())
    operation.refresh_from_db()
    assert operation.state == "unknown"
    from datetime import timedelta

    from cmi_django.models import Operation
    from django.utils import timezone

    Operation.objects.filter(pk=operation.pk).update(created_at=timezone.now() - timedelta(hours=1))
    call_command("cmi_reconcile", stdout=StringIO())
    operation.refresh_from_db()
    assert operation.state == "failed"  # CMI's history has no such refund
    assert ledger(sandbox_settings, local_payment.oid) == ["PreAuth", "PostAuth"]


@pytest.mark.django_db(transaction=True)
def test_migration_0003_keeps_old_operations_settled() -> None:
    """Rows written before Operation.state: succeeded stay succeeded, the rest failed
    (none becomes pending, which would block every later operation of its payment)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("cmi_django", "0002_request_fields_reading")]
    after = [("cmi_django", "0003_operation_state")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        payment = apps.get_model("cmi_django", "Payment").objects.create(
            oid="old-1", platform="test", amount=AMOUNT
        )
        operation = apps.get_model("cmi_django", "Operation")
        operation.objects.create(payment=payment, kind="refund", succeeded=True, key="a")
        operation.objects.create(payment=payment, kind="refund", succeeded=False, key="a")
        operation.objects.create(payment=payment, kind="capture", succeeded=False)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    migrated = executor.loader.project_state(after).apps.get_model("cmi_django", "Operation")
    states = list(migrated.objects.order_by("id").values_list("kind", "state"))
    assert states == [("refund", "succeeded"), ("refund", "failed"), ("capture", "failed")]


@pytest.mark.django_db
def test_reconcile_leaves_an_operation_whose_call_may_still_run_for_the_next_run(
    sandbox_settings: Sandbox, local_payment: Any
) -> None:
    from django.core.management import call_command

    pending = open_operation(local_payment, "refund", "pending", Decimal(20))
    out = StringIO()
    call_command("cmi_reconcile", stdout=out)  # no CommandError: nothing failed
    assert f"{local_payment.oid}: left for the next run" in out.getvalue()
    pending.refresh_from_db()
    assert pending.state == "pending"
    assert ledger(sandbox_settings, local_payment.oid) == ["PreAuth", "PostAuth"]
