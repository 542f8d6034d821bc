"""The order service: checkout as a durable, compensating saga over catalog, inventory
and payment (see model.py for the steps, saga.py for what each does, store.py for
how sagas survive crashes and are shared between replicas)."""

from services.order.orders import Orders
from services.order.recovery import keep_leases, recover
from services.order.servicer import OrderServicer
from services.runtime import Service

__all__ = ["SERVICE"]

SERVICE = Service(
    name="order",
    open_store=Orders.open,
    make_servicer=OrderServicer,
    background=(keep_leases, recover),
)
