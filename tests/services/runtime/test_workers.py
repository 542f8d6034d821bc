"""SHOPMESH_WORKERS: several processes serve one port; the kernel spreads connections."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest

from mesh import contracts

catalog = contracts.service("catalog")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def handled(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    pattern = r'grpc_server_handled_total\{[^}]*grpc_method="GetProduct"[^}]*\} ([0-9.e+]+)'
    return sum(float(v) for v in re.findall(pattern, text.decode()))


def wait_serving(address: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with grpc.insecure_channel(address) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                pass
    raise TimeoutError(f"nothing serving at {address}")


@pytest.fixture
def two_workers(databases):
    port, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "SHOPMESH_WORKERS": "2",
        "SHOPMESH_LISTEN": f"127.0.0.1:{port}",
        "SHOPMESH_METRICS_LISTEN": f"127.0.0.1:{metrics}",
        **databases.env("catalog"),
        "SHOPMESH_DRAIN_SECONDS": "1",
    }
    process = subprocess.Popen([sys.executable, "-m", "services", "catalog"], env=env)
    try:
        wait_serving(f"127.0.0.1:{port}")
        yield process, port, metrics
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_two_workers_share_one_port_and_both_serve(two_workers):
    process, port, metrics = two_workers
    request = catalog.messages.ListProductsRequest(page_size=1)
    for _ in range(60):
        # A private subchannel pool gives every channel its own connection.
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            stub = catalog.stub(channel)
            first = stub.ListProducts(request, timeout=5).products[0]
            stub.GetProduct(catalog.messages.GetProductRequest(id=first.id), timeout=5)
    per_worker = [handled(metrics), handled(metrics + 1)]
    assert sum(per_worker) == 60
    # Each worker's share is random per connection; both must have served some.
    assert min(per_worker) >= 6, per_worker

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_workers_must_be_a_positive_number():
    env = {**os.environ, "SHOPMESH_WORKERS": "zero"}
    result = subprocess.run(
        [sys.executable, "-m", "services", "catalog"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SHOPMESH_WORKERS" in result.stderr
