"""Envoy's admin API on loopback: readiness, bound ports and cluster state."""

from __future__ import annotations

import json
import pathlib
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["EnvoyAdmin", "HostState", "wait_for_admin_address"]


@dataclass(frozen=True)
class HostState:
    """One upstream host as an Envoy sees it."""

    cluster: str
    address: str  # host:port
    healthy: bool
    flags: tuple[str, ...]  # why not healthy: failed_active_health_check, failed_outlier_check, ...
    requests: int  # requests sent to the host so far (rq_total)


def wait_for_admin_address(path: pathlib.Path, timeout: float, alive=lambda: True) -> str:
    """The host:port Envoy wrote to --admin-address-path once its admin listener is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (address := path.read_text().strip()):
            return address
        if not alive():
            raise RuntimeError("Envoy exited before opening its admin port")
        time.sleep(0.05)
    raise TimeoutError(f"Envoy wrote no admin address to {path} within {timeout}s")


class EnvoyAdmin:
    def __init__(self, address: str) -> None:
        self.address = address
        self.url = f"http://{address}"

    def _get(self, path: str, timeout: float = 2.0) -> bytes:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as response:
            return response.read()

    def get_json(self, path: str) -> Any:
        return json.loads(self._get(path))

    def ready(self) -> bool:
        try:
            return self._get("/ready").strip() == b"LIVE"
        except (OSError, urllib.error.URLError):
            return False

    def listener_ports(self) -> dict[str, int]:
        """Listener name -> the port it is bound to (listeners configured with port 0)."""
        statuses = self.get_json("/listeners?format=json").get("listener_statuses", [])
        return {
            status["name"]: status["local_address"]["socket_address"]["port_value"]
            for status in statuses
        }

    def hosts(self) -> list[HostState]:
        found = []
        for cluster in self.get_json("/clusters?format=json").get("cluster_statuses", []):
            for host in cluster.get("host_statuses", []):
                socket = host["address"]["socket_address"]
                health = host.get("health_status", {})
                flags = tuple(sorted(k for k, v in health.items() if v is True))
                # EDS-reported health (eds_health_status) is UNKNOWN for file EDS;
                # what matters is whether a check has failed.
                stats = {s["name"]: int(s.get("value", 0)) for s in host.get("stats", [])}
                found.append(
                    HostState(
                        cluster=cluster["name"],
                        address=f"{socket['address']}:{socket['port_value']}",
                        healthy=not flags,
                        flags=flags,
                        requests=stats.get("rq_total", 0),
                    )
                )
        return found

    def runtime_values(self) -> dict[str, str]:
        """Every runtime key set in some layer -> its value in force (OSError if unreadable)."""
        try:
            entries = self.get_json("/runtime?format=json").get("entries", {})
        except ValueError as error:
            raise OSError(f"{self.address}: /runtime: {error}") from None
        return {key: entry.get("final_value", "") for key, entry in entries.items()}

    def prometheus(self, stat_regex: str) -> str:
        """Stats whose Envoy name matches `stat_regex`, in Prometheus' text format."""
        query = urllib.parse.urlencode({"filter": stat_regex})
        return self._get(f"/stats/prometheus?{query}").decode()

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges whose name starts with `prefix`."""
        document = self.get_json(f"/stats?format=json&filter=^{prefix}")
        return {
            s["name"]: int(s["value"])
            for s in document.get("stats", [])
            if "value" in s and isinstance(s["value"], int | float)
        }
