"""`shopmesh serve <name>`: run one service (the same as `python -m services <name>`)."""

from __future__ import annotations

import argparse

from mesh import contracts


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run one service until SIGTERM (config from SHOPMESH_* environment variables)",
        description=__doc__,
    )
    parser.add_argument("name", choices=sorted(contracts.services()), help="the service to run")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    # Imported here so other subcommands do not pay for the server stack.
    from services.runtime import serve

    return serve(args.name)
