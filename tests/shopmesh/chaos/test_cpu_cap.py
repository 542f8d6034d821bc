"""The CPU ceiling `shopmesh bench` puts on order replicas to make them the bottleneck."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pytest

from shopmesh.bench.cpu_cap import CpuCap
from shopmesh.bench.proc import cpu_seconds

_WHY_NOT = CpuCap.available()
SPIN = "while True: pass"


@pytest.fixture
def spinner():
    process = subprocess.Popen([sys.executable, "-c", SPIN])
    yield process.pid
    process.kill()
    process.wait()


def _cpu_group_line(pid: int) -> str:
    """The line of /proc/<pid>/cgroup naming its group for the CPU controller."""
    lines = pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = [line for line in lines if "cpu" in line.split(":")[1].split(",")]
    return v1[0] if v1 else next(line for line in lines if line.startswith("0::"))


@pytest.mark.skipif(_WHY_NOT is not None, reason=f"no CPU caps here: {_WHY_NOT}")
def test_a_capped_process_gets_its_share_of_a_core_and_no_more(spinner):
    where = _cpu_group_line(spinner)
    with CpuCap(0.2) as cap:
        group = cap.add(spinner)
        assert _cpu_group_line(spinner) != where
        # The kernel enforces the quota in every 100 ms period: a spinning process
        # gets a fifth of a core, where uncapped it would take most of one.
        started, before = time.monotonic(), cpu_seconds(spinner)
        time.sleep(1.5)
        share = (cpu_seconds(spinner) - before) / (time.monotonic() - started)
    assert 0.05 <= share <= 0.3
    # Back where it came from, and the group is gone.
    assert _cpu_group_line(spinner) == where
    assert not group.exists() and cap.groups == {}


def test_a_cap_must_be_a_positive_share():
    with pytest.raises(ValueError):
        CpuCap(0)
