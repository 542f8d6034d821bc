"""GetProduct at a fixed rate with ghz, a load generator of the field (github.com/bojand/ghz).

The sidecar benchmark runs its calls with our own generator (fixed_rate, the one
`shopmesh load` uses) and, in the same rounds, the same calls with ghz: the same
address, rate, duration, product ids and one connection. When both see the
same cost of the sidecars, the figure is not an artefact of our generator.

The two differ in one known way: ghz paces a pool of workers (50) to the rate
and times each call from when it was sent, ours times each call from when it
was due. Below saturation they agree; when the target falls behind, ours shows
the queueing delay and ghz hides part of it (coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import tempfile
from collections import Counter
from dataclasses import dataclass, field

from shopmesh import gotools
from shopmesh.envoy.descriptor import write_transcoder_descriptor

__all__ = ["GET_PRODUCT", "Ghz", "get_product"]

GET_PRODUCT = "shop.catalog.v1.CatalogService.GetProduct"
NANOSECONDS = 1e9


@dataclass
class Ghz:
    """What ghz measured: each call's latency (s) and its status."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    seconds: float = 0.0  # how long the calls took to send, all runs together

    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def _command(address: str, rate: float, seconds: float, folder: pathlib.Path) -> list[str]:
    return [
        gotools.find("ghz"),
        "--insecure",  # plaintext, as the app's port and the caller's sidecar take it
        # The contracts as the services serve them (mesh.contracts' descriptors): the
        # caller's sidecar does not let reflection through.
        "--protoset", str(write_transcoder_descriptor(folder / "shop.protoset")),
        "--call", GET_PRODUCT,
        "--data-file", str(folder / "requests.json"),  # one per call, in turn
        "--rps", str(round(rate)),
        "--duration", f"{seconds}s",
        "--duration-stop", "wait",  # calls in flight at the end count, as ours do
        "--connections", "1",
        "--format", "json",
        "--output", str(folder / "report.json"),
        address,
    ]  # fmt: skip


async def get_product(
    address: str, rate: float, seconds: float, product_ids: list[str], into: Ghz
) -> None:
    """Adds to `into` a run of GetProduct calls at `rate` per second for `seconds`."""
    with tempfile.TemporaryDirectory(prefix="shopmesh-ghz-") as scratch:
        folder = pathlib.Path(scratch)
        (folder / "requests.json").write_text(json.dumps([{"id": i} for i in product_ids]))
        process = await asyncio.create_subprocess_exec(
            *_command(address, rate, seconds, folder),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), seconds + 60)
        if process.returncode != 0:
            raise RuntimeError(f"ghz exited {process.returncode}: {stderr.decode().strip()}")
        report = json.loads((folder / "report.json").read_text())
    for call in report["details"]:
        into.latencies.append(call["latency"] / NANOSECONDS)
        into.outcomes[call["status"]] += 1
    into.seconds += report["total"] / NANOSECONDS
