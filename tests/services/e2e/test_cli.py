"""`shopmesh checkout` places an order against running services and prints it."""

from __future__ import annotations

import asyncio
import json

from shopmesh import cli


async def test_checkout_command_prints_the_confirmed_order(shop, capsys):
    argv = [
        "checkout",
        "--target",
        shop.address("order"),
        "--customer",
        "cli-shopper",
        "--item",
        "kitchen-espresso-cup=2",
        "--card",
        "tok_visa",
        "--recipient",
        "Ada Lovelace",
        "--address-line",
        "1 Main St",
    ]
    # The command blocks; run it off the event loop that serves the shop.
    assert await asyncio.to_thread(cli.main, argv) == 0
    out = capsys.readouterr().out
    assert "CONFIRMED" in out
    assert "2 x Espresso Cup Set (kitchen-espresso-cup)  at 24.90 USD = 49.80 USD" in out

    declined = [*argv, "--json"]
    declined[declined.index("tok_visa")] = "tok_decline_expired"
    assert await asyncio.to_thread(cli.main, declined) == 1
    order = json.loads(capsys.readouterr().out)
    assert (order["status"], order["failureReason"]) == ("ORDER_STATUS_FAILED", "PAYMENT_DECLINED")
