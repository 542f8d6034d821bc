"""`shopmesh load`: drive the shop at a fixed arrival rate and print a latency/error table."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import pathlib
import socket
import time
from urllib.parse import urlsplit

import aiohttp
import grpc

from shopmesh import topology
from shopmesh.identity.tokens import SigningKeys, TokenIssuer
from shopmesh.load import generator
from shopmesh.load.shoppers import GrpcShopper, RestShopper
from shopmesh.local.layout import DEFAULT_RUN_DIR, RunDir


def _mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name not in generator.DEFAULT_MIX:
            raise argparse.ArgumentTypeError(
                f"unknown operation {name!r}; choose from {', '.join(generator.DEFAULT_MIX)}"
            )
        mix[name] = float(weight)
    return mix


def _loopback(target: str) -> str:
    """`target` if its host resolves to loopback addresses only, else an argparse error.

    The host is resolved rather than matched by prefix, so a name such as
    `127.0.0.1.example.com` passes only if every address it resolves to is
    loopback (127.0.0.0/8 or ::1); a name that does not resolve is refused.
    It guards against a mistaken target, not a hostile resolver: the load
    connects by the name again, so use an address to pin it.
    """
    refuse = "load is only sent to loopback addresses"
    try:
        parts = urlsplit(target if "://" in target else f"//{target}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{refuse}; cannot parse {target!r} ({error}); write IPv6 in brackets, e.g. [::1]:8080"
        ) from None
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        raise argparse.ArgumentTypeError(f"{refuse}; {target!r} does not name a plain host")
    try:
        resolved = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise argparse.ArgumentTypeError(f"{refuse}; cannot resolve {host!r}: {error}") from None
    addresses = sorted({info[4][0] for info in resolved})
    elsewhere = [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
    if elsewhere:
        raise argparse.ArgumentTypeError(
            f"{refuse}; {host!r} resolves to {', '.join(elsewhere)}, which is not loopback"
        )
    if not addresses:
        raise argparse.ArgumentTypeError(f"{refuse}; {host!r} resolves to no address")
    return target


def register(subparsers) -> None:
    parser = subparsers.add_parser("load", help=__doc__.split(":", 1)[1].strip())
    parser.add_argument("--rate", type=float, default=50, help="arrivals per second (open model)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of arrivals")
    parser.add_argument(
        "--transport", choices=("rest", "grpc"), default="rest", help="REST/JSON or native gRPC"
    )
    parser.add_argument(
        "--target",
        type=_loopback,
        default="http://127.0.0.1:8080",
        help="the edge: a URL for rest, host:port for grpc (loopback only)",
    )
    parser.add_argument("--mix", type=_mix, default=dict(generator.DEFAULT_MIX))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-in-flight", type=int, default=2000)
    parser.add_argument(
        "--run-dir",
        type=pathlib.Path,
        default=DEFAULT_RUN_DIR,
        help="the local mesh whose development key signs the shoppers' tokens"
        f" (default {DEFAULT_RUN_DIR})",
    )
    parser.set_defaults(func=main)


def _tokens(run_dir: pathlib.Path) -> TokenIssuer | None:
    """Every shopper is a customer with a token; without the mesh's key, anonymous."""
    keys = SigningKeys(RunDir(run_dir).certs)
    if not keys.kids():
        print(f"load: no signing key in {keys.directory}: checkouts and lookups will be 401")
        return None
    return TokenIssuer(keys, topology.load().end_users)


async def _drive(args) -> str:
    plan = generator.LoadPlan(args.rate, args.duration, args.mix, args.seed, args.max_in_flight)
    started = time.monotonic()
    tokens = _tokens(args.run_dir)
    if args.transport == "rest":
        connector = aiohttp.TCPConnector(limit=args.max_in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            recorder = await generator.run(RestShopper(args.target, session, tokens), plan)
    else:
        target = args.target.split("://")[-1]
        async with grpc.aio.insecure_channel(target) as channel:
            recorder = await generator.run(GrpcShopper(channel, tokens=tokens), plan)
    return recorder.report(time.monotonic() - started)


def main(args) -> int:
    print(f"load: {args.transport} {args.target} at {args.rate:g}/s for {args.duration:g}s")
    print(asyncio.run(_drive(args)))
    return 0
