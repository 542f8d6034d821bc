"""grpcurl and grpc-health-probe, run from tests as a user runs them (.tools/bin, `make tools`).

Async, so a server running in the test's own event loop keeps answering while
the tool waits for it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from shopmesh import gotools

__all__ = ["Ran", "grpc_health_probe", "grpcurl"]

# Seconds: far more than either needs (grpcurl stops connecting after 10 s, the probe after 1 s).
TIMEOUT = 30


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Both streams: grpc-health-probe prints its verdict on stderr."""
        return self.stdout + self.stderr

    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)


async def _run(tool: str, *args: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        gotools.find(tool),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return Ran(process.returncode or 0, stdout.decode(), stderr.decode())


async def grpcurl(*args: str) -> Ran:
    return await _run("grpcurl", *args)


async def grpc_health_probe(*args: str) -> Ran:
    return await _run("grpc-health-probe", *args)
