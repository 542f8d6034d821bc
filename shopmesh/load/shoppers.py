"""What a shopper does, over REST/JSON through the edge or over gRPC.

Both shoppers offer the same operations and report an outcome per call: "OK", an
HTTP status ("HTTP 503") or a gRPC code name ("UNAVAILABLE"). A checkout that ends
FAILED (e.g. out of stock) is a correct answer, not an error; it is noted apart.

Shoppers are many customers (CUSTOMERS of them), each with their own token from
`tokens` (the mesh's development issuer): a checkout is one customer's, and an
order is looked up with its customer's token. Without `tokens` a shopper is
anonymous: browsing works, order calls get 401 / UNAUTHENTICATED.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
from google.protobuf import json_format

from mesh import contracts
from shopmesh.identity.tokens import TokenIssuer
from shopmesh.load.recorder import OK

catalog = contracts.service("catalog")
order = contracts.service("order")
payment = contracts.service("payment")

SHIPPING = {
    "regionCode": "US",
    "postalCode": "94103",
    "locality": "San Francisco",
    "addressLines": ["1 Market St"],
    "recipients": ["Load Tester"],
}
APPROVING_TOKEN = "tok_visa"
CUSTOMERS = 1000


def customer(rng: random.Random) -> str:
    return f"load-{rng.randrange(CUSTOMERS)}"


@dataclass
class Knowledge:
    """What shoppers know about the shop: learned once at start, grown by checkouts."""

    product_ids: list[str]
    categories: list[str]
    words: list[str]
    # (order id, its customer) of the orders placed so far
    orders: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_products(cls, products: list[Any]) -> Knowledge:
        words = sorted({w.lower() for p in products for w in p.name.split() if len(w) > 3})
        return cls(
            product_ids=[p.id for p in products],
            categories=sorted({p.category for p in products}),
            words=words or ["a"],
        )


async def _learn(list_page, how: str) -> Knowledge:
    """Every product, page by page; list_page(token) -> (outcome, ListProductsResponse)."""
    products, token = [], ""
    while True:
        outcome, page = await list_page(token)
        if outcome != OK:
            raise RuntimeError(f"cannot list products {how}: {outcome}")
        products += page.products
        token = page.next_page_token
        if not token:
            return Knowledge.from_products(products)


def order_status(name: int) -> str:
    return order.messages.OrderStatus.Name(name).removeprefix("ORDER_STATUS_")


@dataclass(frozen=True)
class ErrorAnswer:
    """One non-200 answer of the edge, as the shopper received it."""

    method: str
    path: str
    status: int
    body: str

    @property
    def order_id(self) -> str:
        """The order the answer names (google.rpc.ErrorInfo metadata order_id), if any."""
        try:
            status = json.loads(self.body)
        except ValueError:
            return ""
        details = status.get("details", []) if isinstance(status, dict) else []
        for detail in details if isinstance(details, list) else []:
            if str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
                return detail.get("metadata", {}).get("order_id", "")
        return ""


def _credentials(tokens: TokenIssuer | None, customer_id: str) -> dict[str, str]:
    return {"authorization": tokens.bearer(customer_id)} if tokens else {}


class RestShopper:
    """Calls the edge's REST/JSON API (the gRPC-JSON transcoder)."""

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        tokens: TokenIssuer | None = None,
        error_log: list[ErrorAnswer] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.tokens = tokens
        # Where every non-200 answer is kept, body and all (chaos checks read them).
        self.error_log = error_log

    async def _call(
        self, method: str, path: str, message_type: Any = None, customer_id: str = "", **kwargs
    ):
        headers = _credentials(self.tokens, customer_id) if customer_id else {}
        url = self.base_url + path
        async with self.session.request(method, url, headers=headers, **kwargs) as response:
            text = await response.text()
            if response.status != 200:
                if self.error_log is not None:
                    self.error_log.append(ErrorAnswer(method, path, response.status, text))
                return f"HTTP {response.status}", None
            body = json.loads(text) if text else {}
            if message_type is None:
                return OK, body
            return OK, json_format.ParseDict(body, message_type(), ignore_unknown_fields=True)

    async def cancel(self, order_id: str, customer_id: str) -> tuple[str, str | None]:
        """POST /v1/orders/{id}:cancel as the customer who placed it."""
        body = {"requestId": str(uuid.uuid4()), "reason": "changed my mind"}
        path, response = f"/v1/orders/{order_id}:cancel", order.messages.CancelOrderResponse
        outcome, cancelled = await self._call(
            "POST", path, response, customer_id=customer_id, json=body
        )
        return outcome, cancelled and f"cancel {order_status(cancelled.order.status)}"

    async def learn(self) -> Knowledge:
        async def page(token: str):
            params = {"pageSize": "100", **({"pageToken": token} if token else {})}
            return await self._call(
                "GET", "/v1/products", catalog.messages.ListProductsResponse, params=params
            )

        return await _learn(page, "through the edge")

    async def browse(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        params = {"pageSize": str(rng.choice((10, 20))), "category": rng.choice(shop.categories)}
        outcome, _ = await self._call("GET", "/v1/products", params=params)
        return outcome, None

    async def search(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        params = {"query": rng.choice(shop.words), "pageSize": "10"}
        outcome, _ = await self._call("GET", "/v1/products:search", params=params)
        return outcome, None

    async def product(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        outcome, _ = await self._call("GET", f"/v1/products/{rng.choice(shop.product_ids)}")
        return outcome, None

    async def place(self, rng: random.Random, customer_id: str, items: dict[str, int]):
        """POST /v1/orders for {product id: quantity} as `customer_id`:
        (outcome, PlaceOrderResponse or None)."""
        body = {
            "items": [{"productId": pid, "quantity": n} for pid, n in items.items()],
            "shippingAddress": SHIPPING,
            "paymentMethod": {"card": {"token": APPROVING_TOKEN}},
            "requestId": str(uuid.UUID(int=rng.getrandbits(128))),
        }
        return await self._call(
            "POST", "/v1/orders", order.messages.PlaceOrderResponse, customer_id, json=body
        )

    async def checkout(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        products = rng.sample(shop.product_ids, rng.choice((1, 2)))
        outcome, placed = await self.place(rng, customer(rng), dict.fromkeys(products, 1))
        if outcome != OK:
            return outcome, None
        shop.orders.append((placed.order.id, placed.order.customer_id))
        return outcome, f"checkout {order_status(placed.order.status)}"

    async def order_lookup(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        if not shop.orders:
            return await self.product(rng, shop)
        order_id, customer_id = rng.choice(shop.orders)
        outcome, _ = await self._call("GET", f"/v1/orders/{order_id}", customer_id=customer_id)
        return outcome, None


class GrpcShopper:
    """Calls the same operations with the generated stubs over one channel."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        order_channel: grpc.aio.Channel | None = None,
        tokens: TokenIssuer | None = None,
    ) -> None:
        # Through the edge one channel reaches every service; direct, each has its own.
        self.catalog = catalog.stub(channel)
        self.order = order.stub(order_channel or channel)
        self.tokens = tokens

    async def _call(self, rpc, request, customer_id: str = "") -> tuple[str, Any]:
        credentials = _credentials(self.tokens, customer_id) if customer_id else {}
        try:
            return OK, await rpc(request, metadata=tuple(credentials.items()))
        except grpc.aio.AioRpcError as error:
            return error.code().name, None

    async def learn(self) -> Knowledge:
        async def page(token: str):
            request = catalog.messages.ListProductsRequest(page_size=100, page_token=token)
            return await self._call(self.catalog.ListProducts, request)

        return await _learn(page, "over gRPC")

    async def browse(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        request = catalog.messages.ListProductsRequest(
            page_size=rng.choice((10, 20)), category=rng.choice(shop.categories)
        )
        return (await self._call(self.catalog.ListProducts, request))[0], None

    async def search(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        request = catalog.messages.SearchProductsRequest(query=rng.choice(shop.words), page_size=10)
        return (await self._call(self.catalog.SearchProducts, request))[0], None

    async def product(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        request = catalog.messages.GetProductRequest(id=rng.choice(shop.product_ids))
        return (await self._call(self.catalog.GetProduct, request))[0], None

    async def checkout(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        customer_id = customer(rng)
        request = order.messages.PlaceOrderRequest(
            items=[
                order.messages.OrderItem(product_id=pid, quantity=1)
                for pid in rng.sample(shop.product_ids, rng.choice((1, 2)))
            ],
            payment_method=payment.messages.PaymentMethod(
                card=payment.messages.CardToken(token=APPROVING_TOKEN)
            ),
            request_id=str(uuid.UUID(int=rng.getrandbits(128))),
        )
        json_format.ParseDict(SHIPPING, request.shipping_address)
        outcome, placed = await self._call(self.order.PlaceOrder, request, customer_id)
        if outcome != OK:
            return outcome, None
        shop.orders.append((placed.order.id, placed.order.customer_id))
        return outcome, f"checkout {order_status(placed.order.status)}"

    async def order_lookup(self, rng: random.Random, shop: Knowledge) -> tuple[str, str | None]:
        if not shop.orders:
            return await self.product(rng, shop)
        order_id, customer_id = rng.choice(shop.orders)
        request = order.messages.GetOrderRequest(id=order_id)
        return (await self._call(self.order.GetOrder, request, customer_id))[0], None
