"""A ceiling on the CPU of chosen processes, set with a kernel control group (Linux).

The benchmarks run every replica on one machine, so a second replica of a service
shares the cores the first one had: it can add capacity only where the machine has
some to spare. On a cluster each replica brings its own node's CPU. Capping every
replica of a service at the same share gives each one its own budget, which makes
that service the bottleneck and shows whether a second replica adds capacity.

    with CpuCap(0.2) as cap:      # 0.2 vCPU for each process added
        cap.add(pid)
        ... run load ...

Needs permission to write the CPU controller (root, in practice): cgroup v2 where
its root offers "cpu" to its children, else cgroup v1's "cpu" hierarchy.
`CpuCap.available()` says why not, where it cannot.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import uuid

__all__ = ["CpuCap"]

V2_ROOT = pathlib.Path("/sys/fs/cgroup")
V1_ROOT = pathlib.Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000  # the kernel's default quota period


def _hierarchy() -> tuple[pathlib.Path, int]:
    """(the directory to make groups in, cgroup version), or OSError naming why none."""
    if "cpu" in _words(V2_ROOT / "cgroup.subtree_control"):
        return V2_ROOT, 2
    if (V1_ROOT / "cpu.cfs_quota_us").exists():
        return V1_ROOT, 1
    raise OSError("no writable CPU controller (cgroup v2 with cpu enabled, or v1 cpu)")


def _words(path: pathlib.Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


class CpuCap:
    def __init__(self, vcpu: float) -> None:
        """`vcpu`: the ceiling for each process added (0.5 = half of one core)."""
        if vcpu <= 0:
            raise ValueError("vcpu must be positive")
        self.vcpu = vcpu
        self._root, self._version = _hierarchy()
        self._groups: list[pathlib.Path] = []

    @staticmethod
    def hierarchy() -> pathlib.Path:
        """The directory caps make their groups in (OSError where there is none)."""
        return _hierarchy()[0]

    @staticmethod
    def available() -> str | None:
        """None when caps can be set here, else why not."""
        try:
            root, _ = _hierarchy()
        except OSError as error:
            return str(error)
        return None if os.access(root, os.W_OK) else f"{root} is not writable"

    def add(self, pid: int) -> None:
        """Move `pid` (all its threads) into a group of its own with the ceiling."""
        group = self._root / f"shopmesh-bench-{uuid.uuid4().hex[:12]}"
        group.mkdir()
        self._groups.append(group)
        quota = int(self.vcpu * PERIOD_US)
        if self._version == 2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        (group / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        """Remove the groups, moving what still runs in them back to the root group."""
        for group in self._groups:
            for pid in _words(group / "cgroup.procs"):
                with contextlib.suppress(OSError):  # it may exit meanwhile
                    (self._root / "cgroup.procs").write_text(pid)
            with contextlib.suppress(FileNotFoundError):
                group.rmdir()
        self._groups.clear()

    def __enter__(self) -> CpuCap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
