"""`shopmesh status`: health of every replica of the local mesh and what each proxy sees.

For each replica: its app's gRPC health (asked directly on loopback) and its
sidecar; for the edge and each sidecar, the replicas it calls as its Envoy's
cluster state shows them (healthy, or why not: failed health check, ejected by
outlier detection, ...) and how many requests each got. A process the mesh's
supervisor restarted says how often and how it last exited. Exit status 0 when
everything is healthy, 1 otherwise (or when no mesh runs in the run directory).
"""

from __future__ import annotations

import argparse
import pathlib
import time

from shopmesh.local import status
from shopmesh.local.layout import DEFAULT_RUN_DIR

__all__ = ["register"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "status", help="health of the local mesh's replicas and proxies", description=__doc__
    )
    parser.add_argument(
        "--run-dir",
        type=pathlib.Path,
        default=DEFAULT_RUN_DIR,
        help=f"the mesh's run directory (default {DEFAULT_RUN_DIR})",
    )
    parser.set_defaults(func=_status)


def _proxy_lines(proxy: status.ProxyStatus) -> list[str]:
    if not proxy.live:
        return ["    envoy not answering"]
    lines = []
    for name, host in sorted(proxy.hosts, key=lambda item: (item[1].cluster, item[0])):
        state = "healthy" if host.healthy else "UNHEALTHY " + ",".join(host.flags)
        lines.append(
            f"    -> {host.cluster:<10} {name:<12} {state:<30} {host.requests:>7} requests"
        )
    return lines


def _history_lines(processes: dict[str, status.History]) -> list[str]:
    """One line per process the supervisor restarted (or saw exit): how often, and how
    it last ended."""
    lines = []
    for what, history in processes.items():
        last = history.last_exit
        if not history.restarts and last is None:
            continue
        when = "" if last is None else time.strftime("%H:%M:%S", time.localtime(last.at))
        ended = "" if last is None else f"; last exit {last.describe()} at {when}"
        lines.append(f"    {what} restarted {history.restarts} times{ended}")
    return lines


def render(mesh: status.MeshStatus) -> str:
    lines = [f"edge        {mesh.edge_url}   admin http://{mesh.edge.admin}"]
    lines += _history_lines({"edge": mesh.edge.history})
    lines += _proxy_lines(mesh.edge)
    for replica in mesh.replicas:
        sidecar = f"sidecar {replica.inbound} (mTLS), admin http://{replica.sidecar.admin}"
        version = replica.version + (" (new)" if replica.canary else "")
        lines.append(
            f"{replica.name:<12}{version:<9}app {replica.app} {replica.app_health:<12} {sidecar}"
        )
        lines += _history_lines({"app": replica.app_history, "sidecar": replica.sidecar.history})
        lines += _proxy_lines(replica.sidecar)
    for service, percent in sorted(mesh.canary_weights.items()):
        lines.append(f"rollout: {percent} % of {service}'s calls go to its new version")
    lines.append("all healthy" if mesh.healthy else "NOT all healthy")
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    try:
        mesh = status.read(args.run_dir)
    except FileNotFoundError:
        print(f"shopmesh status: no local mesh running in {args.run_dir} (start one: shopmesh up)")
        return 1
    print(render(mesh))
    return 0 if mesh.healthy else 1
