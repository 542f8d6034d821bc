"""A new version that is worse than the old: the real service with a fault-injecting
server interceptor, run as `shopmesh rollout --to` command (a rehearsal of a bad release).

    python tests/shopmesh/delivery/faulty_service.py catalog --fail 0.5   # INTERNAL for half
    python tests/shopmesh/delivery/faulty_service.py catalog --slow-ms 600
    python tests/shopmesh/delivery/faulty_service.py catalog --fail 0.5 --status UNIMPLEMENTED

--fail SHARE    that share of the service's own calls end INTERNAL before the handler runs
                (a bug: nothing is done, and no proxy retries it);
--status CODES  the statuses the failing calls end with instead, comma-separated, taken
                in turn (e.g. every status: which of them does a rollout count?);
--slow-ms MS    every call waits this long first, but never past its deadline (the one
                it came with, or its contract's timeout) less 50 ms: a slow release
                that still answers in time.

Health checks and reflection are left alone, so the replica is SERVING and joins its
callers' rotation like a good one. Everything else (config from the environment, the
database, drain) is `python -m services <name>`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
from collections.abc import Sequence

import grpc

from mesh import contracts
from services.runtime import serve
from services.runtime.unary import Behavior, UnaryWrappingInterceptor

# What a deadline leaves the slow version, so it answers slowly rather than too late.
DEADLINE_MARGIN = 0.05


class InjectedFaults(UnaryWrappingInterceptor):
    def __init__(
        self,
        fail: float,
        slow_seconds: float,
        seed: int | None,
        statuses: Sequence[grpc.StatusCode] = (grpc.StatusCode.INTERNAL,),
    ) -> None:
        super().__init__()
        self.fail = fail
        self.slow_seconds = slow_seconds
        self.random = random.Random(seed)
        self.statuses = itertools.cycle(statuses)

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        if method.startswith(("/grpc.health.", "/grpc.reflection.")):
            return behavior
        # A call through the edge's REST API carries no deadline: its route's is the contract's.
        timeout = contracts.method_policy(method).timeout

        async def faulty(request, context: grpc.aio.ServicerContext):
            if self.slow_seconds:
                left = min(context.time_remaining() or timeout, timeout)
                await asyncio.sleep(max(0.0, min(self.slow_seconds, left - DEADLINE_MARGIN)))
            if self.random.random() < self.fail:
                await context.abort(next(self.statuses), "injected fault (rehearsal)")
            return await behavior(request, context)

        return faulty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service")
    parser.add_argument("--fail", type=float, default=0.0, metavar="SHARE")
    parser.add_argument("--slow-ms", type=float, default=0.0, metavar="MS")
    parser.add_argument("--status", default="INTERNAL", metavar="CODES")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if not 0 <= args.fail <= 1 or args.slow_ms < 0:
        parser.error("--fail is a share in [0, 1]; --slow-ms is not negative")
    try:
        statuses = [grpc.StatusCode[name] for name in args.status.split(",")]
    except KeyError as unknown:
        parser.error(f"--status: no gRPC status {unknown}")
    if grpc.StatusCode.OK in statuses:
        parser.error("--status: OK is no failure")
    faults = InjectedFaults(args.fail, args.slow_ms / 1000, args.seed, statuses)
    return serve(args.service, extra_interceptors=[faults])


if __name__ == "__main__":
    sys.exit(main())
