"""Background settling of refunds whose gateway answer was lost.

A refund holds its amount before it asks the gateway. If the gateway's answer
never arrives, the hold stays: releasing it would let a second refund take the
same money again while the first may have been paid out. This job settles such
refunds by asking the gateway about their key (a lookup moves no money): a
refund the gateway made is completed; one it never saw was still asked for, so
it is sent again under the same key (the gateway pays a key out at most once)
and completed when the gateway answers. Only a definite refusal by the gateway
releases a hold. Every replica may run it: completing and dropping are
conditional writes, and the gateway's key decides.
"""

from __future__ import annotations

import asyncio
import logging

from services.payment.gateway import GatewayError, IdempotencyKeyReused, KeyClosed
from services.payment.store import PaymentStore
from services.runtime import ServerConfig

__all__ = ["resolve_pending_refunds", "settle_pending_refunds"]

log = logging.getLogger("shopmesh.payment.resolver")

# A refund still PENDING after this long has lost its answer: the gateway call of
# the request that held it has timed out long before (the Refund deadline is 3 s).
PENDING_FOR_US = 30_000_000


async def settle_pending_refunds(store: PaymentStore, older_than_us: int = PENDING_FOR_US) -> int:
    """Settles what it can of the refunds pending for longer than given; how many."""
    settled = 0
    for refund_id, request_id, fingerprint in await store.pending_refunds(older_than_us):
        key = f"refund:{request_id}"
        record = await store.gateway.lookup(key)
        if record is None or record.kind != "refund":
            refund, payment = await store.refund_by_request(request_id)
            try:
                await store.gateway.refund(
                    key,
                    fingerprint,
                    charge_reference=payment.gateway_reference,
                    amount_nanos=refund.amount_nanos,
                    currency=payment.currency,
                )
            except GatewayError:
                continue  # no answer again (or a refusal of this call only): next round
            except (IdempotencyKeyReused, KeyClosed):
                await store.drop_refund(refund_id)  # the gateway will never pay it out
                log.warning("refund %s refused by the gateway: hold released", refund_id)
                continue
        await store.complete_refund(refund_id)
        log.info("refund %s settled with the gateway", refund_id)
        settled += 1
    return settled


async def resolve_pending_refunds(config: ServerConfig, store: PaymentStore) -> None:
    """Every SHOPMESH_PAYMENT_RESOLVE_SECONDS (5), settles the refunds pending for longer
    than SHOPMESH_PAYMENT_PENDING_REFUND_SECONDS (30)."""
    period = float(config.env.get("SHOPMESH_PAYMENT_RESOLVE_SECONDS") or 5)
    pending_s = float(config.env.get("SHOPMESH_PAYMENT_PENDING_REFUND_SECONDS") or 30)
    while True:
        await asyncio.sleep(period)
        try:
            await settle_pending_refunds(store, int(pending_s * 1_000_000))
        except Exception:
            log.exception("settling pending refunds failed; trying again later")
