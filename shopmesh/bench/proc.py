"""CPU time of processes, read from /proc/<pid>/stat (Linux): user + system, all threads.

    meter = CpuMeter({"catalog": pid, "sidecar": envoy_pid})
    ... run load ...
    used = meter.read()      # label -> CPU seconds since the meter was made (or reset)

The kernel counts in clock ticks (usually 10 ms), so measure over seconds, not
milliseconds. A process that is gone reads as 0 more seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["CpuMeter", "cpu_seconds"]

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


class CpuMeter:
    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.reset()

    def reset(self) -> None:
        self._start = {label: cpu_seconds(pid) for label, pid in self.pids.items()}

    def read(self) -> dict[str, float]:
        return {label: cpu_seconds(pid) - self._start[label] for label, pid in self.pids.items()}
