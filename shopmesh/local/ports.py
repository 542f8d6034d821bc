"""Free loopback ports for the processes that need theirs chosen in advance.

Envoy binds its listeners on port 0 and the runner reads the ports back, so
only the apps (whose sidecars must know where they listen) and their metrics
endpoints take ports from here. Nothing holds a port between being handed out
and the app binding it, so ports come from outside the kernel's ephemeral
range: the port-0 listeners of the mesh's own Envoys and every outgoing
connection on the machine take theirs from inside it, and would otherwise be
able to grab an app's port in that window.
"""

from __future__ import annotations

import pathlib
import random
import socket

__all__ = ["PortAllocator", "PortsExhausted"]

EPHEMERAL_RANGE = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range")
# Below this are well-known and registered ports developers' own tools use.
LOWEST = 10000


def _outside_ephemeral_range() -> range | None:
    try:
        low, high = (int(n) for n in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return None
    if low - LOWEST >= 1000:
        return range(LOWEST, low)
    if 65535 - high >= 1000:
        return range(high + 1, 65536)
    return None


class PortsExhausted(RuntimeError):
    """Every candidate port was handed out or found in use."""


class PortAllocator:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._given: set[int] = set()
        self._candidates = _outside_ephemeral_range()
        # Each candidate is tried once, in random order (two runs on one machine
        # rarely collide), so a range with every port busy ends in an error
        # instead of a search that never ends.
        self._untried = (
            iter(random.sample(self._candidates, len(self._candidates)))
            if self._candidates is not None
            else None
        )

    def _free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((self.host, port))
            except OSError:
                return False
        return True

    def take(self) -> int:
        if self._untried is None:
            return self._take_from_os()
        for port in self._untried:
            if self._free(port):
                self._given.add(port)
                return port
        raise PortsExhausted(
            f"no free port left in {min(self._candidates)}-{max(self._candidates)} "
            f"on {self.host} ({len(self._given)} handed out)"
        )

    def _take_from_os(self) -> int:
        # No known ephemeral range (not Linux): let the OS pick.
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((self.host, 0))
                port = probe.getsockname()[1]
            if port not in self._given:
                self._given.add(port)
                return port
