"""A second process racing for sagas: `python -m tests.services.order.claimer URL OWNER ID...`.

Waits for a line on stdin (so every racer starts together), claims every id at once
and prints the ids it won, as JSON.
"""

import asyncio
import json
import sys

from services.order.store import PostgresOrderStore


async def main(url: str, owner: str, ids: list[str]) -> None:
    store = await PostgresOrderStore.open(url, lease_seconds=30)
    try:
        sys.stdin.readline()
        won = await asyncio.gather(*(store.claim(order_id, owner) for order_id in ids))
        print(json.dumps([saga.id for saga in won if saga is not None]), flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
