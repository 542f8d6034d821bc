"""The CPU ceiling `shopmesh bench` puts on order replicas to make them the bottleneck."""

from __future__ import annotations

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


def _burned(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def _groups() -> set[str]:
    return {p.name for p in CpuCap.hierarchy().iterdir() if p.name.startswith("shopmesh-bench-")}


@pytest.mark.skipif(_WHY_NOT is not None, reason=f"no CPU caps here: {_WHY_NOT}")
def test_a_capped_process_gets_its_share_of_a_core_and_no_more(spinner):
    before = _groups()
    with CpuCap(0.2) as cap:
        cap.add(spinner)
        assert len(_groups() - before) == 1
        # The kernel enforces the quota in every 100 ms period: over 1.5 s a spinning
        # process gets 0.3 s, where uncapped it would take most of a core.
        capped = _burned(spinner, 1.5)
    assert 0.1 <= capped <= 0.45
    # The group is gone, so the process was moved out (a group with members cannot go).
    assert _groups() == before


def test_a_cap_must_be_a_positive_share():
    with pytest.raises(ValueError):
        CpuCap(0)
