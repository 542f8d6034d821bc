"""The order service: checkout as a durable, compensating saga over catalog, inventory
and payment (model.py: the steps; saga.py: what each does; store.py: how sagas survive
crashes and are shared by replicas; recovery.py: who finishes them).

A checkout that cannot succeed is not an error: PlaceOrder returns the order FAILED
with one of these `failure_reason`s (and a `failure_message` saying more):

    MIXED_CURRENCIES      the cart's products are priced in different currencies
    INSUFFICIENT_STOCK    inventory could not hold every item; nothing was charged
    PAYMENT_DECLINED      the gateway refused the charge (the message has the decline
                          reason); the stock was given back
    RESERVATION_EXPIRED   the stock hold ran out before it was committed; the charge was
                          refunded
    <SERVICE>_UNAVAILABLE catalog, inventory or payment failed (after the mesh's retries)
                          in a way that leaves the outcome unknown; whatever it may have
                          done was undone
    <SERVICE>_REJECTED    it refused the call outright; nothing was done

Errors: INVALID_ARGUMENT (field violations, nothing stored); NOT_FOUND PRODUCT_NOT_FOUND
(a product of the cart is not in the catalog: the cart is priced before the order is
stored, so nothing is); FAILED_PRECONDITION
REQUEST_ID_REUSED (a request_id reused for a different checkout) and ORDER_NOT_CONFIRMED
(cancelling an order that is not confirmed); NOT_FOUND; UNAVAILABLE ORDER_IN_PROGRESS
(ErrorInfo metadata `order_id`) when the order could not be made final in time, e.g. a
refund waits for payment to come back: it is finished in the background and repeating
the request returns it.

Knobs: settings.py (leases, recovery) and faults.py (crash-test pause). Metrics:
metrics.py (shopmesh_orders_finished_total{status,reason}, shopmesh_order_sagas_resumed_total,
shopmesh_order_reconciliations_open, shopmesh_order_reconciliations_resolved_total{outcome}).
A charge a saga gave up learning about is accounted for by reconciler.py.
"""

from services.order.orders import Orders
from services.order.reconciler import reconcile
from services.order.recovery import keep_leases, prune_history, recover
from services.order.servicer import OrderServicer
from services.runtime import Service

__all__ = ["SERVICE"]

SERVICE = Service(
    name="order",
    open_store=Orders.open,
    make_servicer=OrderServicer,
    background=(keep_leases, recover, reconcile, prune_history),
)
