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

__all__ = ["PortAllocator"]

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


class PortAllocator:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._given: set[int] = set()
        self._candidates = _outside_ephemeral_range()

    def _free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((self.host, port))
            except OSError:
                return False
        return True

    def take(self) -> int:
        while True:
            if self._candidates is None:
                # No known ephemeral range (not Linux): let the OS pick.
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind((self.host, 0))
                    port = probe.getsockname()[1]
            else:
                port = random.choice(self._candidates)
                if not self._free(port):
                    continue
            if port not in self._given:
                self._given.add(port)
                return port
