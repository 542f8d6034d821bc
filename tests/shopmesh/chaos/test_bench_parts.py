"""The pieces `shopmesh bench` computes its figures with (the benchmarks themselves are
scripts that print a table, not tests)."""

from __future__ import annotations

import os
import time
from collections import Counter

from shopmesh.bench.order_throughput import _answered, fresh_rngs
from shopmesh.bench.proc import CpuMeter, cpu_seconds
from shopmesh.bench.row import Row, errors_text, render


def test_cpu_seconds_count_what_a_process_burns_and_not_what_it_sleeps():
    meter = CpuMeter({"me": os.getpid()})
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    burned = meter.read()["me"]
    meter.reset()
    time.sleep(0.3)
    slept = meter.read()["me"]
    assert 0.2 <= burned <= 2.0
    assert slept < 0.1


def test_a_process_that_is_gone_reads_as_no_cpu():
    assert cpu_seconds(2**22 + 12345) == 0.0


def test_errors_are_shown_with_their_share_and_kinds():
    assert errors_text(Counter({"OK": 10})) == "0"
    assert errors_text(Counter({"OK": 98, "HTTP 503": 1, "UNAVAILABLE": 1})) == (
        "2.00 % (HTTP 503:1, UNAVAILABLE:1)"
    )


def test_placeorder_errors_are_a_share_of_every_checkout_answered_or_not():
    outcomes = Counter({"checkout CONFIRMED": 97, "checkout FAILED": 1, "UNAVAILABLE": 2})
    assert errors_text(_answered(outcomes)) == "2.00 % (UNAVAILABLE:2)"


def test_each_placeorder_round_draws_request_ids_no_earlier_round_drew():
    # A round drawing an earlier round's ids measured idempotent replays (cheap), not
    # new orders: 72 orders/s in a first round, 358/s in a sixth on the same mesh.
    def request_ids():
        return {rng.getrandbits(128) for rng in fresh_rngs(200)}

    first, second = request_ids(), request_ids()
    assert len(first) == len(second) == 200
    assert not first & second


def test_rows_render_percentiles_in_ms_and_whether_the_goal_was_met():
    table = render(
        [
            Row("b", "fast", latencies=[0.001] * 99 + [0.010], goal="p99 <= 5 ms", met=False),
            Row("b", "cpu", figure="0.1 vCPU"),
        ]
    )
    header, _, fast, cpu = table.splitlines()
    assert "p99 ms" in header
    cells = [c.strip() for c in fast.split("|")]
    assert cells[3:6] == ["1.00", "1.00", "10.00"]
    assert cells[-1] == "NO"
    assert [c.strip() for c in cpu.split("|")][3:6] == ["", "", ""]
