"""The shop's PostgreSQL goes away under the shopper mix, then comes back.

Two ways, two scenarios: `postgres-restart` stops the server cleanly (every
session is ended, as a managed database's restart or failover does) and starts
it again; `postgres-kill` SIGKILLs the postmaster, as a crashed host would, and
starts it on the same data, so PostgreSQL's crash recovery runs.

Expected: while the database is away every service reports NOT_SERVING and
checkouts fail cleanly (no 5xx with a database's text, nothing half-written);
once it is back every service is SERVING again within a bound without a
restart of its own, checkouts succeed, every order any shopper was told about
is in the order database, every order is final within a bound, and the
invariants hold on the databases themselves (no oversell, at most one capture
per order and none for an order that failed, refunds never above captures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shopmesh.chaos.harness import Chaos
from shopmesh.chaos.probes import app_health, until
from shopmesh.load.generator import DEFAULT_MIX

__all__ = ["Size", "outage"]


@dataclass(frozen=True)
class Size:
    rate: float  # shopper arrivals per second (the default mix)
    steady: float  # seconds of load before the outage and after the recovery
    down: float  # seconds the database stays away
    max_detection: float  # seconds until every app reports NOT_SERVING
    max_recovery: float  # seconds from the database's start until every app is SERVING
    final_bound: float  # seconds for every order to be final once the load stops


async def outage(chaos: Chaos, size: Size, *, kill: bool) -> None:
    mesh, report = chaos.mesh, chaos.report
    postgres = mesh.postgres
    apps = [replica for replicas in mesh.replicas.values() for replica in replicas]
    timeline = await chaos.start_load(size.rate, DEFAULT_MIX)
    chaos.phase("database up")
    await chaos.hold(size.steady)

    how = "killed (SIGKILL)" if kill else "restarted"
    chaos.phase(f"database {how}")
    down_from = time.monotonic()
    await chaos.act(postgres.kill if kill else postgres.stop)
    detected = await until(
        lambda: all(app_health(r) == "NOT_SERVING" for r in apps), within=size.down + 10
    )
    report.figures["database down -> every app NOT_SERVING (s)"] = _s(detected)
    report.check(
        f"every app reports NOT_SERVING within {size.max_detection:g} s",
        detected is not None and detected <= size.max_detection,
        _s(detected),
    )
    await chaos.hold(max(0.0, size.down - (time.monotonic() - down_from)))
    outage_calls = timeline.between(down_from, time.monotonic())

    chaos.phase("database back")
    await chaos.act(postgres.start_again)
    back_from = time.monotonic()
    back = await until(lambda: all(app_health(r) == "SERVING" for r in apps), within=60)
    report.figures["database started -> every app SERVING (s)"] = _s(back)
    report.check(
        f"every app is SERVING again within {size.max_recovery:g} s, none restarted",
        back is not None
        and back <= size.max_recovery
        and all(r.app.alive and r.app.returncode is None for r in apps),
        _s(back),
    )
    await chaos.hold(size.steady)
    after = timeline.between(back_from + (back or 0), time.monotonic(), "checkout")
    confirmed = sum(c.note == "checkout CONFIRMED" for c in after)
    report.check(
        "checkouts succeed once the database is back",
        bool(after) and confirmed == len(after),
        f"{confirmed} of {len(after)} CONFIRMED",
    )
    server_errors = [c for c in outage_calls if c.outcome in {"HTTP 500", "INTERNAL", "UNKNOWN"}]
    report.check(
        "no call fails as a server bug while the database is away (only 503/UNAVAILABLE)",
        not server_errors,
        f"{len(server_errors)} of {len(outage_calls)}",
    )
    await chaos.settle(size.final_bound)

    snapshot = await chaos.ledger()
    told = {order_id for order_id, _ in (chaos.shop.orders if chaos.shop else ())}
    told |= {answer.order_id for answer in chaos.error_answers if answer.order_id}
    lost = sorted(told - set(snapshot.orders))
    report.check(
        "no order lost: every order id a shopper was given (an order, or named by a 503)"
        " is in the order database",
        not lost,
        f"{len(told)} given, {len(lost)} missing",
    )


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"
