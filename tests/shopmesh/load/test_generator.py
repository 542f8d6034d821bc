"""The open-model load generator against a real catalog server."""

import io

import pytest

from services.runtime.testing import connect, serving
from shopmesh.load import generator
from shopmesh.load.shoppers import GrpcShopper

READ_MIX = {"browse": 0.6, "search": 0.25, "product": 0.15}


async def test_open_model_sends_the_planned_arrivals_and_reports_every_operation(databases):
    plan = generator.LoadPlan(rate=100, duration=1.0, mix=READ_MIX, seed=7)
    progress = io.StringIO()
    async with serving("catalog", databases) as server, connect(server) as channel:
        recorder = await generator.run(GrpcShopper(channel), plan, progress=progress)
    assert recorder.completed == 100
    assert recorder.errors == 0 and recorder.dropped == 0
    assert set(recorder.latencies) == set(READ_MIX)
    # The mix is honoured (seeded), within sampling noise.
    assert 40 <= len(recorder.latencies["browse"]) <= 80
    report = recorder.report(1.0)
    for column in ("p50 ms", "p99 ms", "max ms", "errors", "browse", "all"):
        assert column in report
    assert "done=100" in progress.getvalue()


async def test_errors_are_counted_by_code_not_hidden(databases):
    plan = generator.LoadPlan(rate=50, duration=0.4, mix={"product": 1.0}, seed=1)
    async with serving("catalog", databases) as server, connect(server) as channel:
        shopper = GrpcShopper(channel)
        shop = await shopper.learn()
        shop.product_ids = ["no-such-product"]
        recorder = await generator.run(shopper, plan, shop=shop, progress=None)
    assert recorder.outcomes["product"]["NOT_FOUND"] == 20
    assert recorder.errors == 20
    assert "NOT_FOUND:20" in recorder.report(0.4)


def test_a_plan_rejects_nonsense():
    with pytest.raises(ValueError):
        generator.LoadPlan(rate=0, duration=1, mix=READ_MIX)
    with pytest.raises(ValueError):
        generator.LoadPlan(rate=10, duration=1, mix={})


def test_cli_refuses_non_loopback_targets():
    from shopmesh.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["load", "--target", "http://example.com:8080"])
