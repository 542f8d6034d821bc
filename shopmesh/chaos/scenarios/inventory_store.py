"""Inventory store unavailable: first one replica's, then the whole store, then back.

A store goes away the way a database does: its role may no longer log in and its
sessions are ended (shopmesh.local.postgres cut_off). To take one replica's
store away without the other's, that replica is restarted with a login role of
its own, a member of the `inventory` role (so it still reads and writes the one
shared database); cutting that login off reaches it alone.

Expected: the affected replica reports NOT_SERVING, the order replicas'
sidecars stop sending to it and checkouts keep succeeding on the other one;
with the whole store down checkouts fail (browsing does not), nothing is
charged and no order is confirmed; once the store is back (and the order
replicas' breakers have let a probe through) checkouts succeed, and every
order that failed meanwhile ends FAILED with nothing held or charged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shopmesh.chaos.harness import Chaos
from shopmesh.chaos.probes import app_health, breaker_states, seen_healthy, until

__all__ = ["FULL", "SHORT", "Size", "scenario"]

MIX = {"checkout": 0.4, "browse": 0.3, "product": 0.3}


@dataclass(frozen=True)
class Size:
    rate: float  # shopper arrivals per second (MIX)
    steady: float  # seconds of load before each fault
    one_down: float  # seconds with one replica's store off
    all_down: float  # seconds with the whole store off
    back: float  # seconds of load once the store is back
    max_detection: float  # seconds for NOT_SERVING to reach the callers' proxies
    final_bound: float


SHORT = Size(rate=12, steady=2, one_down=4, all_down=4, back=4, max_detection=5, final_bound=30)
FULL = Size(rate=15, steady=10, one_down=20, all_down=20, back=20, max_detection=5, final_bound=60)


def _own_login(chaos: Chaos, index: int) -> str:
    """Restarts inventory replica `index` with a login role only it uses; the role."""
    login = f"inventory_replica{index}"
    url = chaos.mesh.postgres.add_login(login, member_of="inventory")
    chaos.reconfigure("inventory", index, {"SHOPMESH_DATABASE_URL": url})
    return login


async def scenario(chaos: Chaos, size: Size) -> None:
    mesh, report = chaos.mesh, chaos.report
    replicas = mesh.replicas["inventory"]
    one = replicas[-1]
    postgres = mesh.postgres
    one_login = await chaos.act(_own_login, chaos, one.index)
    timeline = await chaos.start_load(size.rate, MIX)
    chaos.phase("store up")
    await chaos.hold(size.steady)

    chaos.phase(f"{one.name} store off")
    await chaos.act(postgres.cut_off, [one_login])
    detected = await until(
        lambda: app_health(one) == "NOT_SERVING" and not any(seen_healthy(mesh, one).values()),
        within=15,
    )
    report.figures[f"{one.name} store off -> NOT_SERVING, callers avoid it (s)"] = _s(detected)
    report.check(
        f"{one.name} reports NOT_SERVING and its callers stop using it within "
        f"{size.max_detection:g} s",
        detected is not None and detected <= size.max_detection,
        _s(detected),
    )
    shifted_from = time.monotonic()
    await chaos.hold(size.one_down)
    shifted = timeline.between(shifted_from, time.monotonic(), "checkout")
    confirmed = sum(c.note == "checkout CONFIRMED" for c in shifted)
    report.check(
        "traffic shifts: checkouts succeed on the other replica",
        bool(shifted) and confirmed == len(shifted),
        f"{confirmed} of {len(shifted)} CONFIRMED",
    )

    chaos.phase("whole store off")
    await chaos.act(postgres.cut_off, ["inventory"])
    down = await until(lambda: all(app_health(r) == "NOT_SERVING" for r in replicas), within=15)
    report.check("every inventory replica reports NOT_SERVING", down is not None, _s(down))
    before = await chaos.ledger()
    outage_from = time.monotonic()
    await chaos.hold(size.all_down)
    during = await chaos.ledger()
    outage = timeline.between(outage_from, time.monotonic())
    _check_outage(chaos, before, during, outage)

    chaos.phase("store back")
    back_from = time.monotonic()
    await chaos.act(postgres.restore, ["inventory", one_login])
    back = await until(
        lambda: all(
            app_health(r) == "SERVING" and all(seen_healthy(mesh, r).values()) for r in replicas
        ),
        within=30,
    )
    report.figures["store back -> every replica SERVING and in rotation (s)"] = _s(back)
    report.check("every inventory replica is back in rotation", back is not None, _s(back))
    # The order replicas' inventory breakers opened during the outage; they let a
    # probe through after their reset timeout and close when it succeeds.
    closed = await until(
        lambda: all(s == 0 for s in breaker_states(mesh, "order", "inventory")), within=30
    )
    closed_at = None if closed is None else time.monotonic() - back_from
    report.figures["store back -> order's inventory breakers closed (s)"] = _s(closed_at)
    recovered_from = time.monotonic()
    await chaos.hold(size.back)
    after = timeline.between(recovered_from, time.monotonic(), "checkout")
    confirmed = sum(c.note == "checkout CONFIRMED" for c in after)
    report.check(
        "checkouts succeed once the store is back",
        bool(after) and confirmed == len(after),
        f"{confirmed} of {len(after)} CONFIRMED, {time.monotonic() - back_from:.0f} s after",
    )
    await chaos.settle(size.final_bound)


def _check_outage(chaos: Chaos, before, during, calls) -> None:
    report = chaos.report
    confirmed_before = sum(o.status == "CONFIRMED" for o in before.orders.values())
    confirmed_during = sum(o.status == "CONFIRMED" for o in during.orders.values())
    report.check(
        "no order is confirmed while the store is off",
        confirmed_during == confirmed_before,
        f"{confirmed_during - confirmed_before} confirmed",
    )
    # An order caught between its charge and its commit when the store went away is
    # compensating (it is refunded once the store is back); what must never happen
    # is a charge for an order whose stock was not held first.
    unheld = [o.id for o in during.orders.values() if during.payments_of(o.id)
              and not during.reservations_of(o.id)]  # fmt: skip
    report.check(
        "no partial orders: nothing charged without its stock held",
        not unheld,
        f"{len(unheld)} charged orders without a reservation",
    )
    browsing = [c for c in calls if c.operation != "checkout"]
    report.check(
        "browsing is unaffected while the store is off",
        bool(browsing) and all(c.ok for c in browsing),
        f"{sum(not c.ok for c in browsing)} of {len(browsing)} failed",
    )


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"
