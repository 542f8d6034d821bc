"""`shopmesh up` (`make up`): the whole shop on this machine, behind real Envoy.

Creates a local CA and SPIFFE certificates, renders every Envoy config from
shopmesh/topology.yaml and the contracts, starts the replicas of each service
(`python -m services <name>`) with their sidecars and the edge proxy, waits
until every health check is SERVING, prints where everything is, and runs until
Ctrl-C or SIGTERM, restarting (with backoff) any app, sidecar or the edge that
exits meanwhile. Then it stops every process it started. Meanwhile `shopmesh
rollout` rolls out new versions through its control socket (<run-dir>/control.sock).
"""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import threading

from shopmesh.delivery.control import ControlServer
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.local.layout import DEFAULT_RUN_DIR
from shopmesh.local.mesh import LocalMesh, MeshError

__all__ = ["register"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run the local mesh until Ctrl-C (edge, sidecars, 2 replicas of each service)",
        description=__doc__,
    )
    parser.add_argument(
        "--run-dir",
        type=pathlib.Path,
        default=DEFAULT_RUN_DIR,
        help=f"certificates, configs, data and logs (default {DEFAULT_RUN_DIR})",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="the edge's port on 127.0.0.1 (0: any free port)"
    )
    parser.set_defaults(func=_up)


def _say(message: str) -> None:
    print(f"shopmesh up: {message}", flush=True)


def _banner(mesh: LocalMesh) -> str:
    url = mesh.edge_url
    lines = [
        "",
        f"REST/JSON   {url}       (e.g. {url}/v1/products)",
        f"gRPC        {mesh.edge_address}   (plaintext h2c; the same port)",
        f"edge admin  {mesh.edge_admin.url}",
        "",
        "replicas (app: plaintext on loopback; sidecar: mTLS, the mesh CA's certs only)",
    ]
    for replicas in mesh.replicas.values():
        for r in replicas:
            assert r.sidecar.admin
            lines.append(
                f"  {r.name:<12} app {r.app_address:<17} sidecar {r.inbound_address:<17}"
                f" admin {r.sidecar.admin.url}"
            )
    lines += [
        "",
        "try:",
        f"  curl -s {url}/v1/products?pageSize=3",
        f"  curl -s {url}/v1/products/kitchen-espresso-cup",
        "  # orders are an end user's: a token whose subject is the customer",
        f"  TOKEN=$(shopmesh token --customer ada --run-dir {mesh.layout.root})",
        f'  curl -s -X POST {url}/v1/orders -H "authorization: Bearer $TOKEN"'
        " -H 'content-type: application/json' -d '"
        '{"items": [{"productId": "kitchen-espresso-cup", "quantity": 1}],'
        ' "shippingAddress": {"regionCode": "US", "addressLines": ["1 Main St"],'
        ' "recipients": ["Ada Lovelace"]}, "paymentMethod": {"card": {"token": "tok_visa"}},'
        " \"requestId\": \"'$(python3 -c 'import uuid; print(uuid.uuid4())')'\"}'",
        f'  curl -s {url}/v1/orders -H "authorization: Bearer $TOKEN"',
        f"  shopmesh status --run-dir {mesh.layout.root}",
        f"  shopmesh rollout catalog --to v2 --run-dir {mesh.layout.root}"
        "   # SLO-gated: 5, 20, 50, 100 %",
        "",
        f"logs: {mesh.layout.logs}    Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _up(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        _say(f"{signal.Signals(signum).name}: stopping")
        stop.set()
        # A second Ctrl-C while starting aborts the start (and stops what runs).
        signal.signal(signal.SIGINT, signal.default_int_handler)

    mesh = LocalMesh(args.run_dir, edge_settings=EdgeSettings(port=args.port), progress=_say)
    # SIGHUP: the terminal closed; stop as for Ctrl-C rather than orphan everything.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        mesh.start()
    except MeshError as error:
        print(f"shopmesh up: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    control = ControlServer(mesh).start()
    try:
        if not stop.is_set():
            print(_banner(mesh), flush=True)
        # The mesh's supervisor restarts what exits and says so (progress=_say). A
        # timed wait: the signal handlers run between the waits.
        while not stop.wait(1.0):
            pass
    finally:
        try:
            # A rollout under way is rolled back first: its client is told so.
            control.close()
        finally:
            _say("stopping every process")
            mesh.stop()
        _say("stopped")
    return 0
