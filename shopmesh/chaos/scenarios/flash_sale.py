"""Flash sale: a burst of 20x the usual checkout rate for one item with little stock left.

The shop runs its usual shopper mix (5 % checkouts) without the sale item;
the item is sold down to `stock` units by one large order; then checkouts of
one unit each arrive for it at 20 times the mix's checkout rate. The edge's
checkout rate limit (shopmesh/envoy/fragments/edge/checkout_rate_limit.yaml) turns most of the
burst away with 429 before it reaches the order service; the rest race for
the units in the inventory.

Expected: exactly `stock` sale checkouts are CONFIRMED, every other one fails
cleanly (HTTP 429, or an order FAILED with reason INSUFFICIENT_STOCK), no
shopper sees a 5xx, and the item ends with nothing available and nothing
oversold.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace

from services.inventory.store import SEED_QUANTITY
from services.seed import SEED_PRODUCTS
from shopmesh.chaos.harness import Chaos
from shopmesh.load.generator import DEFAULT_MIX
from shopmesh.load.recorder import OK
from shopmesh.load.shoppers import RestShopper, order_status

__all__ = ["FULL", "SHORT", "FlashSaleShopper", "Size", "scenario"]

CLEAN_FAILURES = {"HTTP 429", "FAILED INSUFFICIENT_STOCK"}


class FlashSaleShopper(RestShopper):
    """Checks out `quantity` units of one product; notes "<STATUS> <failure_reason>"."""

    def __init__(self, base_url, session, tokens, product_id: str, quantity: int = 1) -> None:
        super().__init__(base_url, session, tokens)
        self.product_id = product_id
        self.quantity = quantity

    async def checkout(self, rng, shop):
        customer = f"flash-{rng.randrange(10_000)}"
        outcome, placed = await self.place(rng, customer, {self.product_id: self.quantity})
        if outcome != OK:
            return outcome, None
        status = order_status(placed.order.status)
        return outcome, f"{status} {placed.order.failure_reason}".strip()


@dataclass(frozen=True)
class Size:
    rate: float  # the usual shoppers' arrivals per second (default mix, 5 % checkouts)
    stock: int  # units of the sale item left when the sale starts
    sale: float  # seconds the burst lasts
    steady: float  # seconds of the usual load before and after the sale
    final_bound: float


SHORT = Size(rate=30, stock=8, sale=2, steady=1.5, final_bound=20)
FULL = Size(rate=60, stock=50, sale=5, steady=5, final_bound=30)


async def scenario(chaos: Chaos, size: Size) -> None:
    report = chaos.report
    shop = await chaos.knowledge()
    item = shop.product_ids[-1]
    usual = replace(shop, product_ids=[p for p in shop.product_ids if p != item])
    bulk = FlashSaleShopper(
        chaos.mesh.edge_url, chaos.session, chaos.mesh.tokens, item, SEED_QUANTITY - size.stock
    )
    outcome, note = await bulk.checkout(random.Random(0), shop)
    report.check(
        f"the sale item is sold down to {size.stock} units",
        outcome == OK and note == "CONFIRMED",
        f"{outcome} {note or ''}".strip(),
    )

    await chaos.start_load(size.rate, DEFAULT_MIX, shop=usual)
    chaos.phase("before the sale")
    await chaos.hold(size.steady)
    chaos.phase("flash sale")
    checkout_rate = size.rate * DEFAULT_MIX["checkout"]
    sale = await chaos.burst(
        20 * checkout_rate,
        size.sale,
        FlashSaleShopper(chaos.mesh.edge_url, chaos.session, chaos.mesh.tokens, item),
        shop,
        {"checkout": 1.0},
    )
    chaos.timelines.append(sale)
    chaos.phase("after the sale")
    await chaos.hold(size.steady)
    await chaos.settle(size.final_bound)

    kinds = Counter(c.note if c.ok else c.outcome for c in sale.calls)
    report.figures["sale checkouts"] = (
        f"{len(sale.calls)} at {20 * checkout_rate:g}/s: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    )
    report.check(
        f"exactly {size.stock} sale checkouts CONFIRMED",
        kinds["CONFIRMED"] == size.stock,
        f"{kinds['CONFIRMED']} confirmed",
    )
    unclean = {k: n for k, n in kinds.items() if k not in CLEAN_FAILURES | {"CONFIRMED"}}
    report.check(
        "every other sale checkout fails cleanly (429 or FAILED INSUFFICIENT_STOCK)",
        not unclean,
        ", ".join(f"{k} {n}" for k, n in unclean.items()) or "all clean",
    )
    everything = Counter(c.outcome for t in chaos.timelines for c in t.calls)
    server_errors = {k: n for k, n in everything.items() if k.startswith(("HTTP 5", "EXCEPTION"))}
    report.check("no shopper sees a 5xx", not server_errors, str(server_errors or "none"))
    sku = next(p.sku for p in SEED_PRODUCTS if p.id == item)
    level = (await chaos.ops.stock_levels([sku]))[sku]
    report.check(
        "the sale item is sold out, not oversold",
        level.available == 0 and level.sold == SEED_QUANTITY,
        f"available {level.available}, sold {level.sold} of {SEED_QUANTITY}",
    )
