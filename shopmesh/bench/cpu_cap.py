"""A ceiling on the CPU of chosen processes, set with a kernel control group (Linux).

The benchmarks run every replica on one machine, so a second replica of a service
shares the cores the first one had: it can add capacity only where the machine has
some to spare. On a cluster each replica brings its own node's CPU. Capping every
replica of a service at the same share gives each one its own budget, which makes
that service the bottleneck and shows whether a second replica adds capacity.

    with CpuCap(0.2) as cap:      # 0.2 vCPU for each process added
        cap.add(pid)              # the process and its threads, not its children
        ... run load, stop the processes ...

Closing moves what still runs in the groups back where it came from and removes the
groups. Needs permission to write the CPU controller (root, in practice): cgroup v2
where its root offers "cpu" to its children, else cgroup v1's "cpu" hierarchy.
`CpuCap.available()` says why not, where it cannot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import uuid

__all__ = ["CpuCap"]

log = logging.getLogger("shopmesh.bench")

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


def _group_of(pid: int, root: pathlib.Path, version: int) -> pathlib.Path:
    """The group `pid` is in now, in the hierarchy at `root` (/proc/<pid>/cgroup)."""
    for line in pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (version == 2 and controllers == "") or "cpu" in controllers.split(","):
            return root / path.lstrip("/")
    return root


class CpuCap:
    def __init__(self, vcpu: float) -> None:
        """`vcpu`: the ceiling for each process added (0.5 = half of one core)."""
        if vcpu <= 0:
            raise ValueError("vcpu must be positive")
        self.vcpu = vcpu
        self._root, self._version = _hierarchy()
        self.groups: dict[pathlib.Path, pathlib.Path] = {}  # group made -> where it came from

    @staticmethod
    def available() -> str | None:
        """None when caps can be set here, else why not."""
        try:
            root, _ = _hierarchy()
        except OSError as error:
            return str(error)
        return None if os.access(root, os.W_OK) else f"{root} is not writable"

    def add(self, pid: int) -> pathlib.Path:
        """Moves `pid` (all its threads) into a group of its own with the ceiling; the group."""
        origin = _group_of(pid, self._root, self._version)
        group = self._root / f"shopmesh-bench-{uuid.uuid4().hex[:12]}"
        group.mkdir()
        self.groups[group] = origin
        quota = int(self.vcpu * PERIOD_US)
        if self._version == 2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        (group / "cgroup.procs").write_text(str(pid))
        return group

    def close(self) -> None:
        """Moves what still runs in the groups back to where it came from and removes
        them: every group it can, logging those it cannot (a failure here must not hide
        what the benchmark raised)."""
        for group, origin in list(self.groups.items()):
            try:
                for pid in _words(group / "cgroup.procs"):
                    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                        (origin / "cgroup.procs").write_text(pid)
                group.rmdir()
            except FileNotFoundError:
                pass
            except OSError as error:
                log.warning("could not remove the CPU cap group %s: %s", group, error)
                continue
            del self.groups[group]

    def __enter__(self) -> CpuCap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
