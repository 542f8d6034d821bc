"""Money under unknown outcomes: payment's database away at charge time, a gateway that
captures and then times out, an order-database blip mid-saga, operator refunds racing
the saga's own compensation.

Phases, under a checkout-heavy shopper mix:
1. payment's database is cut off: charges fail before the gateway is asked
   (payment says NOTHING_DONE) or cannot be sent at all; such orders settle FAILED at
   once, and none is charged;
2. the gateway fails a share of calls, half of them *after* doing the work (the
   capture or refund happened, the answer was lost): the saga settles each unknown
   charge with CloseCharge (never by charging again) and refunds what was captured;
   a refund whose answer was lost keeps its hold until the gateway's answer is known;
3. the order database is cut off for a moment while sagas are between steps: their
   leases run out, recovery resumes them, nothing is left PENDING;
4. confirmed orders are cancelled while an operator refunds the same payments by
   hand: however the two interleave, no more is given back than was taken.

Checked at the end, besides the usual invariants, against the simulated gateway's
own ledger (where money really moved): for every FAILED or CANCELLED order captured
minus refunded is 0, for every CONFIRMED order it is the order's total, refunds never
exceed captures; no order stays PENDING past the bound while an order replica runs;
every failed call is a JSON google.rpc.Status, never a proxy's text.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from shopmesh.chaos.harness import Chaos

__all__ = ["FULL", "SHORT", "Size", "scenario"]

MIX = {"checkout": 0.6, "browse": 0.2, "order_lookup": 0.2}
# A share of the gateway's calls fails; half of those fail after doing the work.
GATEWAY_ERRORS = {"SHOPMESH_GATEWAY_ERROR_RATE": "0.3"}


@dataclass(frozen=True)
class Size:
    rate: float  # shopper arrivals per second
    steady: float  # seconds of load between phases
    payment_db_down: float
    gateway_faulty: float
    order_db_down: float
    cancellations: int  # confirmed orders cancelled while an operator refunds them
    final_bound: float  # seconds for every order to be final once the load stops
    pending_bound: float  # seconds any order may stay PENDING, from creation to final


SHORT = Size(rate=12, steady=2, payment_db_down=3, gateway_faulty=5, order_db_down=1.5,
             cancellations=6, final_bound=45, pending_bound=40)  # fmt: skip
FULL = Size(rate=25, steady=10, payment_db_down=15, gateway_faulty=30, order_db_down=5,
            cancellations=30, final_bound=90, pending_bound=60)  # fmt: skip


async def scenario(chaos: Chaos, size: Size) -> None:
    mesh, report = chaos.mesh, chaos.report
    postgres = mesh.postgres
    await chaos.start_load(size.rate, MIX)
    chaos.phase("steady")
    await chaos.hold(size.steady)

    chaos.phase("payment database down at charge time")
    await chaos.act(postgres.cut_off, ["payment", "payment_gateway"])
    await chaos.hold(size.payment_db_down)
    await chaos.act(postgres.restore, ["payment", "payment_gateway"])
    chaos.phase("payment database back")
    await chaos.hold(size.steady)

    chaos.phase("gateway captures, then times out")
    for replica in mesh.replicas["payment"]:
        await chaos.act(chaos.reconfigure, "payment", replica.index, GATEWAY_ERRORS)
    await chaos.hold(size.gateway_faulty)
    for replica in mesh.replicas["payment"]:
        await chaos.act(chaos.reconfigure, "payment", replica.index,
                        dict.fromkeys(GATEWAY_ERRORS))  # fmt: skip
    chaos.phase("gateway healthy")
    await chaos.hold(size.steady)

    chaos.phase("order database blip mid-saga")
    await chaos.act(postgres.cut_off, ["order"])
    await chaos.hold(size.order_db_down)
    await chaos.act(postgres.restore, ["order"])
    chaos.phase("order database back")
    await chaos.hold(size.steady)

    chaos.phase("operator refunds race cancellations")
    raced = await _race_cancellations(chaos, size.cancellations)
    report.figures["cancellations raced by an operator refund"] = str(raced)
    report.check("orders were cancelled while an operator refunded them", raced > 0, str(raced))
    await chaos.settle(size.final_bound)
    _check_answers(chaos)
    await chaos.act(_check_exercised, chaos, size)


async def _race_cancellations(chaos: Chaos, count: int) -> int:
    """Cancels up to `count` confirmed orders through the edge while the operator refunds
    each one's payment at the same moment; how many pairs ran."""
    ledger = await chaos.ledger()
    confirmed = [o for o in ledger.orders.values() if o.status == "CONFIRMED"][:count]
    shopper = chaos.shopper()

    async def operator(payment_id: str) -> None:
        try:
            await chaos.payment_ops.refund(payment_id, "goodwill refund by support")
        except Exception as error:  # e.g. nothing left to refund: the saga was first
            chaos.progress(f"operator refund of {payment_id}: {type(error).__name__}")

    await asyncio.gather(*(
        coroutine
        for order in confirmed
        for coroutine in (shopper.cancel(order.id, order.customer_id), operator(order.payment_id))
    ))  # fmt: skip
    return len(confirmed)


def _check_answers(chaos: Chaos) -> None:
    """Every failed call answered a JSON google.rpc.Status (never a proxy's text), and
    a checkout left in progress names its order."""
    bad, anonymous = [], []
    for answer in chaos.error_answers:
        try:
            status = json.loads(answer.body)
        except ValueError:
            bad.append(answer.body[:80])
            continue
        if not isinstance(status, dict) or not {"code", "message"} <= set(status):
            bad.append(answer.body[:80])
        elif any(text in status["message"] for text in PROXY_TEXTS):
            bad.append(status["message"][:80])
        elif answer.path == "/v1/orders" and answer.status >= 500 and not answer.order_id:
            anonymous.append(status["message"][:80])
    answers = len(chaos.error_answers)
    chaos.report.check(
        "every failed call is a JSON google.rpc.Status without a proxy's text",
        not bad,
        f"{len(bad)} of {answers}" + (f", e.g. {bad[0]!r}" if bad else ""),
    )
    chaos.report.check(
        "every checkout that could not finish in time names its order (ErrorInfo order_id)",
        not anonymous,
        f"{len(anonymous)} without" + (f", e.g. {anonymous[0]!r}" if anonymous else ""),
    )


# What Envoy says in its own replies; none of it may reach a shopper.
PROXY_TEXTS = ("upstream connect error", "reset before headers", "no healthy upstream",
               "upstream request timeout", "remote connection failure")  # fmt: skip


# What the phases must have caused, so that the invariants were not checked vacuously.
EXERCISED = {
    "charges settled by closing their key (nothing taken)": (
        "payment_gateway",
        "SELECT count(*) FROM gateway_operations WHERE kind = 'closed'",
    ),
    "captures whose answer was lost, then refunded for a failed order": (
        "payment_gateway",
        "SELECT count(*) FROM gateway_operations r JOIN gateway_operations c"
        " ON c.result->>'reference' = r.metadata->>'charge_reference'"
        " WHERE r.kind = 'refund' AND c.kind = 'charge'",
    ),
    "sagas taken over by recovery (CLAIM: their run had stopped mid-way)": (
        "order",
        "SELECT count(DISTINCT order_id) FROM saga_history WHERE event = 'CLAIM'",
    ),
}


def _check_exercised(chaos: Chaos, size: Size) -> None:
    postgres, report = chaos.mesh.postgres, chaos.report
    for what, (database, sql) in EXERCISED.items():
        with postgres.admin(database) as connection:
            (count,) = connection.execute(sql).fetchone()
        report.figures[what] = str(count)
        report.check(f"exercised: {what}", count > 0, str(count))
    with postgres.admin("order") as connection:
        (longest,) = connection.execute(
            "SELECT coalesce(max(extract(epoch FROM final - first)), 0) FROM"
            " (SELECT min(at) AS first, min(at) FILTER (WHERE event LIKE 'ORDER_STATUS_%%')"
            " AS final FROM saga_history GROUP BY order_id) s"
        ).fetchone()
    report.figures["longest time from checkout to final (s)"] = f"{longest:.1f}"
    report.check(
        f"no order stayed PENDING longer than {size.pending_bound:g} s",
        longest <= size.pending_bound,
        f"{longest:.1f} s",
    )
