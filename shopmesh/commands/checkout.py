"""`shopmesh checkout`: place an order through the order service and print it.

shopmesh checkout --token "$(shopmesh token --customer ada)" --target 127.0.0.1:8080 \\
    --item kitchen-espresso-cup=2 --item kitchen-chef-knife \\
    --card tok_visa --recipient "Ada Lovelace" --address-line "1 Main St" --region US

The order is the token's subject's (an end user's JWT, sent as `authorization:
Bearer`; --token or $SHOPMESH_TOKEN). The order service is found like every
upstream (mesh.config: SHOPMESH_UPSTREAM_ORDER, SHOPMESH_MESH_CONFIG, else
order:50051) unless --target is given (the edge, locally). Exit status: 0 when
the order is CONFIRMED, 1 when it FAILED or the call failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import decimal
import os
import sys
import uuid

import grpc
from google.protobuf import json_format
from shop.payment.v1 import payment_pb2

import mesh
from mesh import config as mesh_config
from mesh import contracts

__all__ = ["register"]

WALLETS = ("apple_pay", "google_pay", "paypal")


def _item(text: str) -> tuple[str, int]:
    product, _, quantity = text.partition("=")
    try:
        return product, int(quantity or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use PRODUCT_ID or PRODUCT_ID=QUANTITY"
        ) from None


def _wallet(text: str) -> payment_pb2.WalletToken:
    provider, _, token = text.partition(":")
    if provider.lower() not in WALLETS or not token:
        raise argparse.ArgumentTypeError(f"{text!r}: use PROVIDER:TOKEN, PROVIDER one of {WALLETS}")
    return payment_pb2.WalletToken(
        provider=payment_pb2.WalletProvider.Value(f"WALLET_PROVIDER_{provider.upper()}"),
        token=token,
    )


def _amount(money) -> str:
    value = decimal.Decimal(money.units) + decimal.Decimal(money.nanos) / 1_000_000_000
    return f"{value:.2f} {money.currency_code}"


def _request(args: argparse.Namespace, messages) -> object:
    if args.wallet:
        method = payment_pb2.PaymentMethod(wallet=args.wallet)
    else:
        method = payment_pb2.PaymentMethod(card=payment_pb2.CardToken(token=args.card))
    request = messages.PlaceOrderRequest(
        customer_id=args.customer,
        items=[messages.OrderItem(product_id=p, quantity=q) for p, q in args.item],
        payment_method=method,
        request_id=args.request_id or str(uuid.uuid4()),
    )
    address = request.shipping_address
    address.region_code = args.region
    address.address_lines.extend(args.address_line)
    address.recipients.append(args.recipient)
    if args.postal_code:
        address.postal_code = args.postal_code
    if args.city:
        address.locality = args.city
    return request


def _print(order, messages) -> None:
    status = messages.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_")
    print(f"order {order.id}  {status}")
    for line in order.lines:
        print(
            f"  {line.quantity} x {line.name} ({line.product_id})"
            f"  at {_amount(line.unit_price)} = {_amount(line.line_total)}"
        )
    if order.HasField("total"):
        print(f"  total {_amount(order.total)}")
    if order.failure_reason:
        print(f"  failed: {order.failure_reason}: {order.failure_message}")
    if order.payment_id:
        print(f"  payment {order.payment_id}")
    if order.reservation_id:
        print(f"  reservation {order.reservation_id}")


def _run(args: argparse.Namespace) -> int:
    if not args.token:
        print(
            "shopmesh checkout: an order needs an end user's token: --token"
            ' "$(shopmesh token --customer ada)" or $SHOPMESH_TOKEN',
            file=sys.stderr,
        )
        return 2
    contract = contracts.service("order")
    messages = contract.messages
    request = _request(args, messages)
    config = mesh_config.load()
    if args.target:
        config = mesh_config.MeshConfig(
            upstreams={**config.upstreams, "order": mesh_config.Upstream("order", args.target)},
            app_retries=config.app_retries,
        )
    credentials = (("authorization", f"Bearer {args.token}"),)
    with mesh.connect("order", config=config) as channel:
        try:
            response = contract.stub(channel).PlaceOrder(
                request, timeout=args.timeout, metadata=credentials
            )
        except grpc.RpcError as error:
            print(f"shopmesh checkout: {error.code().name}: {error.details()}", file=sys.stderr)
            print(
                f"  (retry with --request-id {request.request_id} to get the same order)",
                file=sys.stderr,
            )
            return 1
    if args.json:
        print(json_format.MessageToJson(response.order))
    else:
        _print(response.order, messages)
    return 0 if response.order.status == messages.ORDER_STATUS_CONFIRMED else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "checkout",
        help="place an order (PlaceOrder) and print it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SHOPMESH_TOKEN"),
        help="the end user's token (default $SHOPMESH_TOKEN): the order is its subject's",
    )
    parser.add_argument(
        "--customer",
        default="",
        help="customer id; empty (the default) means the token's subject, any other is refused",
    )
    parser.add_argument(
        "--item",
        type=_item,
        action="append",
        required=True,
        metavar="PRODUCT_ID[=QUANTITY]",
        help="a catalog product and how many (repeat for more)",
    )
    pay = parser.add_mutually_exclusive_group(required=True)
    pay.add_argument("--card", metavar="TOKEN", help="a card token, e.g. tok_visa")
    pay.add_argument(
        "--wallet",
        type=_wallet,
        metavar="PROVIDER:TOKEN",
        help=f"a wallet token; provider one of {WALLETS}",
    )
    parser.add_argument("--recipient", required=True, help="who receives the parcel")
    parser.add_argument(
        "--address-line", action="append", required=True, help="street address (repeatable)"
    )
    parser.add_argument("--region", default="US", help="CLDR region code (default US)")
    parser.add_argument("--postal-code", default="")
    parser.add_argument("--city", default="")
    parser.add_argument(
        "--request-id", help="UUID making the checkout retry-safe (default: a new one)"
    )
    parser.add_argument("--target", metavar="HOST:PORT", help="order service address")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--json", action="store_true", help="print the order as JSON")
    parser.set_defaults(func=_run)
