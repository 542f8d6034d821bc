"""CPU time of processes, read from /proc/<pid>/stat (Linux): user + system, all threads.

    meter = CpuMeter({"catalog": pid, "sidecars": [envoy_pid, other_envoy_pid]})
    ... run load ...
    used = meter.read()      # label -> CPU seconds since the meter was made (or reset)

The kernel counts in clock ticks (usually 10 ms), so measure over seconds, not
milliseconds. A process that is gone reads as 0 more seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

__all__ = ["CpuMeter", "children", "cpu_seconds"]

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) `pid` has used so far; 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = text.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / TICKS_PER_SECOND


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` now (e.g. a PostgreSQL server's backends)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # field 4 of proc(5): the parent
            found.append(int(entry))
    return found


class CpuMeter:
    def __init__(self, pids: Mapping[str, int | Iterable[int]]) -> None:
        """`pids`: label -> a process, or several whose CPU is added up under the label."""
        self.pids = {
            label: (pid,) if isinstance(pid, int) else tuple(pid) for label, pid in pids.items()
        }
        self.reset()

    def _now(self) -> dict[str, float]:
        return {label: sum(map(cpu_seconds, pids)) for label, pids in self.pids.items()}

    def reset(self) -> None:
        self._start = self._now()

    def read(self) -> dict[str, float]:
        now = self._now()
        return {label: now[label] - self._start[label] for label in self.pids}
