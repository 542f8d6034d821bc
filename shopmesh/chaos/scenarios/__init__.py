"""The chaos scenarios, by the name `shopmesh chaos <name>` takes.

Each module has `scenario(chaos, size)`, a SHORT size (the test in tests/shopmesh/chaos,
bounded so the whole suite stays under five minutes on two cores) and a FULL
size (the CLI's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from shopmesh.chaos.scenarios import (
    ambiguous_outcomes,
    flash_sale,
    inventory_store,
    kill_replicas,
    order_crash,
    payment_gateway,
    postgres_kill,
    postgres_restart,
)

__all__ = ["SCENARIOS", "Entry"]


@dataclass(frozen=True)
class Entry:
    name: str
    module: ModuleType

    @property
    def summary(self) -> str:
        return (self.module.__doc__ or "").strip().splitlines()[0]


SCENARIOS = {
    entry.name: entry
    for entry in (
        Entry("kill-replicas", kill_replicas),
        Entry("payment-gateway", payment_gateway),
        Entry("inventory-store", inventory_store),
        Entry("order-crash", order_crash),
        Entry("flash-sale", flash_sale),
        Entry("postgres-restart", postgres_restart),
        Entry("postgres-kill", postgres_kill),
        Entry("ambiguous-outcomes", ambiguous_outcomes),
    )
}
