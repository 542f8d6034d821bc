"""Upgrading from the SQLite releases: `shopmesh import-sqlite` moves each database's
rows into an empty PostgreSQL database, all or nothing, and the services then carry
on from them (an in-flight saga is resumed, later migrations reach the imported rows)."""

from __future__ import annotations

import itertools
import json
import pathlib
import sqlite3
import time

import psycopg
import pytest
from shop.order.v1 import order_pb2

from services.order.model import new_saga
from services.order.store import PostgresOrderStore
from shopmesh import cli
from shopmesh.sqlite_import import ImportRefused, import_sqlite

from ..services.order.checkout import place_request

SCHEMAS = pathlib.Path(__file__).with_name("sqlite_release")
_numbers = itertools.count(1)


def _sqlite_file(tmp_path: pathlib.Path, database: str, rows: dict[str, list[dict]]):
    path = tmp_path / f"{database}.db"
    with sqlite3.connect(path) as source:
        source.executescript((SCHEMAS / f"{database}.sql").read_text())
        for table, records in rows.items():
            for record in records:
                marks = ", ".join("?" * len(record))
                source.execute(
                    f"INSERT INTO {table} ({', '.join(record)}) VALUES ({marks})",
                    tuple(record.values()),
                )
    source.close()
    return path


def _empty_database(postgres, role: str) -> str:
    """A new database of `role` with no schema at all (what an upgrade imports into)."""
    name = f"import{next(_numbers)}_{role}"
    postgres.create_database(role, name)
    return postgres.url(role, name, postgres.password(role))


def _order_row(
    saga, *, step, owner=None, lease_expires=None, status=order_pb2.ORDER_STATUS_PENDING
):
    return {
        "id": saga.id, "customer_id": saga.order.customer_id, "request_id": saga.request.request_id,
        "fingerprint": saga.fingerprint, "status": status, "step": step,
        "create_time": time.time_ns(), "order_pb": saga.order.SerializeToString(),
        "request_pb": saga.request.SerializeToString(), "refund_due": 0, "owner": owner,
        "lease_expires": lease_expires,
    }  # fmt: skip


@pytest.fixture
def order_file(tmp_path):
    confirmed, in_flight = new_saga(place_request()), new_saga(place_request())
    confirmed.order.id, in_flight.order.id = "order-done", "order-in-flight"
    confirmed.order.status = order_pb2.ORDER_STATUS_CONFIRMED
    history = [
        {"seq": 7, "order_id": "order-done", "owner": "order-1", "event": "PRICE", "at": 1.0e9},
        {"seq": 9, "order_id": "order-done", "owner": "order-1", "event": "CONFIRMED", "at": 1.5e9},
    ]
    rows = {
        "orders": [
            _order_row(confirmed, step=None, status=order_pb2.ORDER_STATUS_CONFIRMED),
            # Stopped mid-checkout: its lease ran out when the old release went down.
            _order_row(in_flight, step="CHARGE", owner="order-2", lease_expires=time.time() - 60),
        ],
        "saga_history": history,
    }
    return _sqlite_file(tmp_path, "order", rows), confirmed


async def test_orders_are_imported_and_an_in_flight_saga_is_resumable(postgres, order_file):
    path, confirmed = order_file
    url = _empty_database(postgres, "order")
    lines = []
    copied = await import_sqlite(path, "order", url, progress=lines.append)
    assert copied == {"orders": 2, "saga_history": 2}
    assert "orders: 2 rows" in lines

    store = await PostgresOrderStore.open(url)
    try:
        done = await store.get("order-done")
        assert done.order == confirmed.order and done.request == confirmed.request
        assert [(h.event, h.at) for h in await store.history("order-done")] == [
            ("PRICE", 1.0e9), ("CONFIRMED", 1.5e9),
        ]  # fmt: skip
        # Recovery finds the saga the old release left at CHARGE, and may take it over.
        assert "order-in-flight" in await store.claimable(10)
        taken = await store.claim("order-in-flight", "order-new")
        assert taken is not None and taken.step.value == "CHARGE"
    finally:
        await store.close()


async def test_later_migrations_reach_the_imported_rows(postgres, tmp_path):
    result = json.dumps({"approved": True, "reference": "gw-1"})
    rows = {"gateway_operations": [
        {"idempotency_key": "charge:o-1", "fingerprint": "f1", "result": result, "create_us": 1},
        {"idempotency_key": "refund:o-1", "fingerprint": "f2", "result": result, "create_us": 2},
    ]}  # fmt: skip
    path = _sqlite_file(tmp_path, "payment_gateway", rows)
    url = _empty_database(postgres, "payment_gateway")
    await import_sqlite(path, "payment_gateway", url, progress=lambda line: None)
    with psycopg.connect(url) as db:
        kinds = db.execute(
            "SELECT idempotency_key, kind, result FROM gateway_operations ORDER BY 1"
        )
        assert kinds.fetchall() == [
            ("charge:o-1", "charge", json.loads(result)),
            ("refund:o-1", "refund", json.loads(result)),  # set by gateway migration 0002
        ]


async def test_an_import_is_all_or_nothing_and_never_merges(postgres, tmp_path, order_file):
    bad = {"payments": [], "refunds": []}
    payment = {
        "id": "pay-1", "request_id": "r1", "fingerprint": "f", "order_id": "o-1",
        "currency": "USD", "amount_nanos": 5_000_000_000, "status": 1, "method_kind": "card",
        "method_brand": "visa", "last4": "4242", "gateway_reference": "gw-1", "create_us": 1,
    }  # fmt: skip
    bad["payments"].append(payment)
    # PostgreSQL checks what SQLite never did: a refund state it does not know.
    refund = {"id": "ref-1", "request_id": "r2", "fingerprint": "f", "payment_id": "pay-1",
              "amount_nanos": 1, "reason": "x", "state": "lost", "create_us": 2}  # fmt: skip
    bad["refunds"].append(refund)
    url = _empty_database(postgres, "payment")
    with pytest.raises(psycopg.errors.CheckViolation):
        await import_sqlite(_sqlite_file(tmp_path, "payment", bad), "payment", url, print)
    with psycopg.connect(url) as db:  # the payment copied before the refund is gone too
        assert db.execute("SELECT count(*) FROM payments").fetchone() == (0,)

    refund["state"] = "done"
    (tmp_path / "payment.db").unlink()
    fixed = _sqlite_file(tmp_path, "payment", bad)
    assert await import_sqlite(fixed, "payment", url, print) == {"payments": 1, "refunds": 1}
    with pytest.raises(ImportRefused, match=r"never merges|schema version"):
        await import_sqlite(fixed, "payment", url, print)
    with psycopg.connect(url) as db:
        assert db.execute("SELECT count(*) FROM refunds").fetchone() == (1,)

    order_path = order_file[0]
    with pytest.raises(ImportRefused, match="not this database's file"):
        await import_sqlite(order_path, "payment", _empty_database(postgres, "payment"), print)


def test_the_command_says_what_it_copied_and_refuses_with_status_1(postgres, order_file, capsys):
    url = _empty_database(postgres, "order")
    assert cli.main(["import-sqlite", "order", str(order_file[0]), "--database-url", url]) == 0
    assert "imported 4 rows into order" in capsys.readouterr().out
    assert cli.main(["import-sqlite", "order", str(order_file[0]), "--database-url", url]) == 1
    assert "refused, nothing written" in capsys.readouterr().out
