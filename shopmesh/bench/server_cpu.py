"""Server CPU per GetProduct: the full service stack vs a trivial grpc.aio server, and
the catalog with 1 vs 2 worker processes (SHOPMESH_WORKERS, SO_REUSEPORT).

Both servers run as processes of their own and are driven directly (no
sidecars) at the same fixed rate, in alternating rounds; CPU comes from
/proc/<pid>/stat. The full stack is `python -m services catalog` as deployed:
interceptors (metrics, tracing, error mapping, logging), health, reflection,
PostgreSQL-backed store with its in-memory index, and a /metrics endpoint. The
trivial one is shopmesh.bench.echo_server.

Workers: the same catalog with SHOPMESH_WORKERS=1 and =2, each driven
closed-loop (as fast as 32 callers on 16 connections go) in alternating
rounds; each worker's share of the calls comes from its own /metrics (worker i
serves it on the metrics port + i). The load generator shares the machine's
cores with the workers, so 2 workers cannot double the rate here.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import socket
import urllib.request
from collections import Counter
from collections.abc import Iterator

from services.runtime.testing import spawn
from shopmesh.bench import echo_server, fixed_rate
from shopmesh.bench.proc import cpu_seconds
from shopmesh.bench.row import Row, errors_text
from shopmesh.bench.throughput import saturate
from shopmesh.local.postgres import LocalPostgres

__all__ = ["measure_cpu", "measure_workers", "running"]

CPU_RATIO_GOAL = 1.5
WORKER_SHARE_GOAL = 0.30
_HANDLED = re.compile(
    r'^grpc_server_handled_total\{[^}]*grpc_method="GetProduct"[^}]*\} ([0-9.e+]+)$', re.M
)


def _free_port_pair() -> int:
    """A port P with P + 1 also free (worker i serves /metrics on P + i)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second, contextlib.suppress(OSError):
                second.bind(("127.0.0.1", port + 1))
                return port
    raise RuntimeError("no two consecutive free ports on loopback")


@contextlib.contextmanager
def running(data_dir: pathlib.Path, workers: int = 1) -> Iterator[tuple[int, int, int]]:
    """(pid, port, metrics port) of a catalog service process with `workers` workers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    metrics = _free_port_pair()
    env = {"SHOPMESH_METRICS_LISTEN": f"127.0.0.1:{metrics}", "SHOPMESH_WORKERS": str(workers)}
    postgres = LocalPostgres(data_dir / "postgres").start()
    try:
        postgres.create_database("catalog")
        with spawn("catalog", postgres, data_dir, env) as server:
            yield server.process.pid, server.port, metrics
    finally:
        postgres.stop()


async def measure_cpu(data_dir: pathlib.Path, rate: float, rounds: int, seconds: float):
    with (
        running(data_dir) as (full_pid, full_port, _),
        echo_server.spawned() as (echo_pid, echo_port),
    ):
        servers = {
            "full stack (services catalog)": (full_pid, f"127.0.0.1:{full_port}"),
            "trivial grpc.aio (echo_server)": (echo_pid, f"127.0.0.1:{echo_port}"),
        }
        shop = await fixed_rate.learn(servers["full stack (services catalog)"][1])
        cpu, calls, outcomes = Counter(), Counter(), {label: Counter() for label in servers}
        for _, address in servers.values():
            await fixed_rate.get_product(address, rate / 4, 1.0, shop)  # warm up
        for _ in range(rounds):
            for label, (pid, address) in servers.items():
                before = cpu_seconds(pid)
                recorder = await fixed_rate.get_product(address, rate, seconds, shop)
                cpu[label] += cpu_seconds(pid) - before
                calls[label] += len(recorder.latencies["product"])
                outcomes[label].update(recorder.outcomes["product"])
    per_call = {label: cpu[label] / max(calls[label], 1) * 1e6 for label in servers}
    full, trivial = per_call.values()
    rows = []
    for label in servers:
        is_full = label.startswith("full")
        rows.append(
            Row("server CPU per GetProduct", label, f"{rate:g}/s",
                errors=errors_text(outcomes[label]),
                figure=f"{per_call[label]:.0f} us CPU per call"
                       + (f", {full / trivial:.2f}x the trivial server" if is_full else ""),
                goal=f"<= {CPU_RATIO_GOAL}x" if is_full else "",
                met=(full / trivial <= CPU_RATIO_GOAL) if is_full else None)
        )  # fmt: skip
    return rows


def _handled(metrics_port: int, workers: int) -> list[float]:
    counts = []
    for index in range(workers):
        url = f"http://127.0.0.1:{metrics_port + index}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            counts.append(sum(float(v) for v in _HANDLED.findall(response.read().decode())))
    return counts


async def measure_workers(data_dir: pathlib.Path, rounds: int, seconds: float) -> list[Row]:
    rates: dict[int, list[float]] = {1: [], 2: []}
    served: dict[int, Counter] = {1: Counter(), 2: Counter()}
    outcomes: dict[int, Counter] = {1: Counter(), 2: Counter()}
    with running(data_dir / "w1", 1) as one, running(data_dir / "w2", 2) as two:
        servers = {1: one, 2: two}
        shop = await fixed_rate.learn(f"127.0.0.1:{one[1]}")
        for _ in range(rounds):
            for workers, (_, port, metrics) in servers.items():
                before = _handled(metrics, workers)
                rate, seen = await saturate(f"127.0.0.1:{port}", seconds, shop)
                after = _handled(metrics, workers)
                rates[workers].append(rate)
                outcomes[workers].update(seen)
                served[workers].update(
                    {i: a - b for i, (a, b) in enumerate(zip(after, before, strict=True))}
                )
    rows = []
    for workers in (1, 2):
        total = sum(served[workers].values()) or 1
        shares = [served[workers][i] / total for i in range(workers)]
        best = max(rates[workers])
        figure = f"{best:.0f} calls/s (rounds: {', '.join(f'{r:.0f}' for r in rates[workers])})"
        if workers == 2:
            figure += ", shares " + " / ".join(f"{s:.0%}" for s in shares)
            figure += f", {best / max(rates[1]):.2f}x 1 worker"
        rows.append(
            Row("catalog workers (SO_REUSEPORT)", f"{workers} worker{'s' * (workers > 1)}",
                "closed loop, 32 callers", errors=errors_text(outcomes[workers]), figure=figure,
                goal=f"each >= {WORKER_SHARE_GOAL:.0%}" if workers == 2 else "",
                met=min(shares) >= WORKER_SHARE_GOAL if workers == 2 else None)
        )  # fmt: skip
    return rows
