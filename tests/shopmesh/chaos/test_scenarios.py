"""Each chaos scenario in its short form, on its own fresh local mesh (real Envoy, real
service processes, real PostgreSQL): its own checks and every invariant must hold."""

from __future__ import annotations

import pytest

from shopmesh.chaos import harness
from shopmesh.chaos.scenarios import SCENARIOS
from shopmesh.cli import build_parser


# Each short form takes 10-30 s here (about 100 s for all five); the bound leaves
# room for a slower machine without letting a hung scenario eat the CI budget.
@pytest.mark.timeout(150)
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_short_form(name, tmp_path):
    module = SCENARIOS[name].module
    report = harness.run(name, module.scenario, module.SHORT, tmp_path / "mesh")
    assert report.passed, report.render()
    # Not vacuous: shoppers shopped, orders were placed and confirmed, checks ran.
    assert report.overall and report.overall[1] > 0
    assert report.order_statuses["CONFIRMED"] > 0
    assert report.checks


def test_the_cli_offers_every_scenario_in_both_forms():
    parser = build_parser()
    for name in [*SCENARIOS, "all"]:
        args = parser.parse_args(["chaos", name, "--short"])
        assert (args.name, args.short) == (name, True)
    assert parser.parse_args(["chaos", "flash-sale"]).short is False
    with pytest.raises(SystemExit):
        parser.parse_args(["chaos", "no-such-scenario"])
