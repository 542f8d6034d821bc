"""InventoryService handlers: validate every field, then one store transaction."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from mesh import contracts
from services.inventory.store import InventoryStore, Reservation, Stock, fingerprint
from services.runtime import ServerConfig
from services.runtime.validation import Violations

__all__ = ["InventoryServicer"]

contract = contracts.service("inventory")
messages = contract.messages

MAX_ITEMS = 100
MAX_SKUS = 100
MAX_RESERVE_QUANTITY = 1000
MAX_RESTOCK_QUANTITY = 1_000_000
DEFAULT_TTL_US = 15 * 60 * 1_000_000
MIN_TTL_US, MAX_TTL_US = 1_000_000, 3600 * 1_000_000


def _timestamp(micros: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def stock_level(stock: Stock):
    return messages.StockLevel(
        sku=stock.sku,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        available=stock.available,
        sold=stock.sold,
    )


def reservation_message(reservation: Reservation):
    return messages.Reservation(
        id=reservation.id,
        order_id=reservation.order_id,
        items=[messages.ReservationItem(sku=s, quantity=q) for s, q in reservation.items],
        state=reservation.state,
        expire_time=_timestamp(reservation.expire_us),
        create_time=_timestamp(reservation.create_us),
    )


def _request_print(method: str, request) -> str:
    """Fingerprint of a request without its request_id: what a retry must repeat exactly."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return fingerprint(method, copy.SerializeToString(deterministic=True))


def _ttl_us(request, violations: Violations) -> int:
    if not request.HasField("ttl"):
        return DEFAULT_TTL_US
    ttl = request.ttl
    if not 0 <= ttl.nanos < 1_000_000_000:
        violations.add("ttl.nanos", "must be between 0 and 999,999,999")
        return DEFAULT_TTL_US
    micros = ttl.seconds * 1_000_000 + ttl.nanos // 1000
    if not MIN_TTL_US <= micros <= MAX_TTL_US:
        violations.add("ttl", "must be between 1 second and 1 hour")
    return micros


class InventoryServicer(contract.servicer_base):
    def __init__(self, config: ServerConfig, store: InventoryStore) -> None:
        self._store = store

    async def GetStock(self, request, context):
        violations = Violations()
        violations.required(request.sku, "sku")
        violations.check()
        [stock] = await self._store.stock([request.sku])
        return messages.GetStockResponse(stock=stock_level(stock))

    async def BatchGetStock(self, request, context):
        violations = Violations()
        if violations.count(request.skus, "skus", 1, MAX_SKUS):
            for index, sku in enumerate(request.skus):
                violations.required(sku, f"skus[{index}]")
        violations.check()
        stocks = await self._store.stock(list(request.skus))
        return messages.BatchGetStockResponse(stocks=[stock_level(s) for s in stocks])

    async def ReserveStock(self, request, context):
        violations = Violations()
        violations.required(request.order_id, "order_id")
        violations.required(request.request_id, "request_id")
        if violations.count(request.items, "items", 1, MAX_ITEMS):
            for index, item in enumerate(request.items):
                violations.required(item.sku, f"items[{index}].sku")
                violations.in_range(
                    item.quantity, f"items[{index}].quantity", 1, MAX_RESERVE_QUANTITY
                )
            violations.distinct(request.items, "items", key=lambda item: item.sku)
        ttl_us = _ttl_us(request, violations)
        violations.check()
        reservation = await self._store.reserve(
            request.order_id,
            [(item.sku, item.quantity) for item in request.items],
            ttl_us,
            request.request_id,
            _request_print("ReserveStock", request),
        )
        return messages.ReserveStockResponse(reservation=reservation_message(reservation))

    def _check_reservation_request(self, request) -> None:
        violations = Violations()
        violations.required(request.reservation_id, "reservation_id")
        violations.required(request.request_id, "request_id")
        violations.check()

    async def CommitReservation(self, request, context):
        self._check_reservation_request(request)
        reservation = await self._store.commit(
            request.reservation_id,
            request.request_id,
            _request_print("CommitReservation", request),
        )
        return messages.CommitReservationResponse(reservation=reservation_message(reservation))

    async def ReleaseReservation(self, request, context):
        self._check_reservation_request(request)
        reservation = await self._store.release(
            request.reservation_id,
            request.request_id,
            _request_print("ReleaseReservation", request),
        )
        return messages.ReleaseReservationResponse(reservation=reservation_message(reservation))

    async def Restock(self, request, context):
        violations = Violations()
        violations.required(request.sku, "sku")
        violations.required(request.request_id, "request_id")
        violations.in_range(request.quantity, "quantity", 1, MAX_RESTOCK_QUANTITY)
        violations.check()
        stock = await self._store.restock(
            request.sku, request.quantity, request.request_id, _request_print("Restock", request)
        )
        return messages.RestockResponse(stock=stock_level(stock))
