"""Several worker processes serving one port (SO_REUSEPORT), for a service on several cores.

A Python process uses one core; with SHOPMESH_WORKERS=N the service runs N copies
of itself that all bind the same port with SO_REUSEPORT, and the kernel spreads
incoming connections over them. The parent only reserves the port, forwards
SIGTERM/SIGINT and restarts a worker that dies. Workers share the service's
database like replicas do (invariants kept in its transactions). Worker i serves
/metrics on the metrics port + i.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time

from services.runtime.config import ServerConfig

__all__ = ["serve_workers"]

log = logging.getLogger("shopmesh.workers")
RESTART_DELAY_S = 1.0


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def _reserve(address: str) -> tuple[socket.socket, str]:
    """Bind (not listen) the address with SO_REUSEPORT, so port 0 becomes one fixed port."""
    host, port = _split(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    return sock, f"[{host}]:{bound}" if family == socket.AF_INET6 else f"{host}:{bound}"


def _worker_env(config: ServerConfig, listen: str, index: int) -> dict[str, str]:
    env = {**config.env, "SHOPMESH_LISTEN": listen, "SHOPMESH_WORKERS": "1"}
    env["SHOPMESH_REUSE_PORT"] = "1"
    env["SHOPMESH_WORKER_INDEX"] = str(index)
    if config.metrics_listen:
        host, port = _split(config.metrics_listen)
        env["SHOPMESH_METRICS_LISTEN"] = f"{host}:{port + index if port else 0}"
    return env


def _spawn(config: ServerConfig, listen: str, index: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services", config.service],
        env=_worker_env(config, listen, index),
    )


def serve_workers(config: ServerConfig) -> int:
    """Run config.workers workers until SIGTERM/SIGINT; 0 when every worker drained cleanly."""
    reservation, listen = _reserve(config.listen)
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    workers = [_spawn(config, listen, i) for i in range(config.workers)]
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    log.info("workers started", extra={"listen": listen, "pids": [w.pid for w in workers]})
    try:
        while not stopping:
            for index, worker in enumerate(workers):
                if worker.poll() is not None and not stopping:
                    log.error(
                        "worker exited; restarting",
                        extra={"worker": index, "returncode": worker.returncode},
                    )
                    time.sleep(RESTART_DELAY_S)
                    workers[index] = _spawn(config, listen, index)
            time.sleep(0.2)
        codes = [worker.wait() for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        reservation.close()
    log.info("workers stopped", extra={"returncodes": codes})
    return 0 if all(code == 0 for code in codes) else 1
