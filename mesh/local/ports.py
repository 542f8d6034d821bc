"""Free loopback ports for the processes that need theirs chosen in advance.

Envoy binds its listeners on port 0 and the runner reads the ports back, so
only the apps (whose sidecars must know where they listen) and their metrics
endpoints take ports from here. A port is free when handed out; nothing holds
it until the app binds, so one allocator never hands out the same port twice.
"""

from __future__ import annotations

import socket

__all__ = ["PortAllocator"]


class PortAllocator:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._given: set[int] = set()

    def take(self) -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((self.host, 0))
                port = probe.getsockname()[1]
            if port not in self._given:
                self._given.add(port)
                return port
