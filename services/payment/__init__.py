"""The payment service: charges and refunds through a gateway, deduplicated on request_id.

Test tokens and chaos knobs of the simulated gateway: see services/payment/gateway.py.
"""

from services.payment.resolver import resolve_pending_refunds
from services.payment.servicer import PaymentServicer
from services.payment.store import PaymentStore
from services.runtime import Service

__all__ = ["SERVICE"]

SERVICE = Service(
    name="payment",
    open_store=PaymentStore.open,
    make_servicer=PaymentServicer,
    background=(resolve_pending_refunds,),
)
