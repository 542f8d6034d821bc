"""`shopmesh token`: an end user's token for the local mesh, signed with its development key.

    curl -H "authorization: Bearer $(shopmesh token --customer ada)" \\
        http://127.0.0.1:8080/v1/orders

`make up` creates the key beside the mesh CA (<run-dir>/certs) and the edge and
the order sidecars trust its public half (jwks.json there). The customer is the
token's subject; `--scope shop.ops` makes an operator, who may read any order.
Prints the token (a JWT, ES256) and nothing else.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from shopmesh import topology
from shopmesh.identity.tokens import DEFAULT_TTL, SigningKeys, TokenIssuer
from shopmesh.local.layout import DEFAULT_RUN_DIR, RunDir

__all__ = ["register"]


def _seconds(text: str) -> float:
    """A TTL: seconds, or a number with s, m, h or d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use seconds or e.g. 30m, 12h") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a token must live a while")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "token",
        help="print an end user's token (JWT) for the local mesh",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--customer", required=True, help="the token's subject (sub)")
    parser.add_argument(
        "--scope",
        action="append",
        default=[],
        help="a scope to grant, e.g. shop.ops to read any order (repeatable)",
    )
    parser.add_argument(
        "--ttl",
        type=_seconds,
        default=DEFAULT_TTL,
        help=f"how long it is valid: seconds, or 30m, 12h, ... (default {DEFAULT_TTL:g}s)",
    )
    parser.add_argument(
        "--run-dir",
        type=pathlib.Path,
        default=DEFAULT_RUN_DIR,
        help=f"the mesh's run directory, where its keys are (default {DEFAULT_RUN_DIR})",
    )
    parser.set_defaults(func=_token)


def _token(args: argparse.Namespace) -> int:
    keys = SigningKeys(RunDir(args.run_dir).certs)
    if not keys.kids():
        print(
            f"shopmesh token: no signing key in {keys.directory}: start the mesh (make up) first",
            file=sys.stderr,
        )
        return 1
    issuer = TokenIssuer(keys, topology.load().end_users)
    print(issuer.token(args.customer, args.scope, args.ttl))
    return 0
