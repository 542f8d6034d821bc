"""overlays/progressive-delivery: Flagger's Canaries follow shopmesh/rollout.yaml, their
checks are PromQL that reads the release's own calls, and every pod Flagger runs is
reached by the policies that reach the service's pods."""

from __future__ import annotations

import copy
import pathlib

import promql_parser
import pytest
import yaml

from shopmesh import rollout, topology
from shopmesh.istio import checks, flagger, manifests
from shopmesh.istio.manifests import ISTIO_DIR, PROGRESSIVE_DELIVERY

from . import database_consistency
from .flagger_view import as_running
from .istio_consistency import every_pod_problems, find
from .progressive_delivery_consistency import canary_problems

CHANGED = {
    "steps_percent": [10, 25, 100],
    "analysis": {
        "window_seconds": 120,
        "min_requests": 40,
        "max_error_rate": 0.005,
        "max_p99_ms": 250,
    },
}


def _changed_policy(tmp_path: pathlib.Path) -> rollout.Policy:
    document = yaml.safe_load(rollout.POLICY_FILE.read_text())
    assert document != CHANGED  # every number below differs from the committed policy
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump({**document, **CHANGED}))
    return rollout.load(path)


def test_changing_the_rollout_policy_changes_every_canary(running, tmp_path) -> None:
    policy = _changed_policy(tmp_path)
    # `make check-gen` fails until istio/ is regenerated, and only the Canaries change.
    canaries = sorted(f"{PROGRESSIVE_DELIVERY}/{s}/canary.yaml" for s in topology.load().services)
    assert manifests.check(ISTIO_DIR, policy) == canaries
    istio = tmp_path / "istio"
    manifests.write(istio, policy)
    regenerated = as_running(list(yaml.safe_load_all(checks.build(istio / PROGRESSIVE_DELIVERY))))
    assert canary_problems(regenerated, policy) == []
    (canary,) = find(regenerated, "Canary", "payment")
    analysis = canary["spec"]["analysis"]
    assert (analysis["interval"], analysis["stepWeights"]) == ("120s", [10, 25])
    assert [m["thresholdRange"] for m in analysis["metrics"]] == [
        {"min": 40},
        {"max": 0.5},
        {"max": 250},
    ]
    # The committed Canaries, judged by the new policy, differ in every number.
    stale = canary_problems(running[PROGRESSIVE_DELIVERY], policy)
    for words in ("interval 60s", "steps [5, 20, 50]", "{'min': 100}", "{'max': 0.1}", "500"):
        assert any(words in problem for problem in stale), words


def test_the_window_is_whole_seconds_holding_two_scrapes() -> None:
    policy = rollout.load()
    assert flagger.interval(policy.with_window(30)) == "30s"
    with pytest.raises(ValueError, match="whole seconds"):
        flagger.interval(policy.with_window(90.5))
    with pytest.raises(ValueError, match="two scrapes"):
        flagger.interval(policy.with_window(20))


def test_every_query_is_promql_once_flagger_fills_it_in(rendered) -> None:
    templates = find(rendered[PROGRESSIVE_DELIVERY], "MetricTemplate")
    assert {t["metadata"]["name"] for t in templates} == {
        "requests",
        "error-percent",
        "latency-p99",
    }
    for template in templates:
        query = template["spec"]["query"]
        for variable, value in (("namespace", "shop"), ("target", "catalog"), ("interval", "60s")):
            query = query.replace("{{ %s }}" % variable, value)  # noqa: UP031 (Go template)
        assert "{{" not in query
        promql_parser.parse(query)  # raises on a syntax error
    with pytest.raises(ValueError):
        promql_parser.parse(templates[0]["spec"]["query"].replace("))", ")", 1))


def test_flaggers_destination_rules_get_the_base_policy_but_its_tcp_pool(rendered) -> None:
    (rule,) = find(rendered["base"], "DestinationRule", "order")
    (canary,) = find(rendered[PROGRESSIVE_DELIVERY], "Canary", "order")
    wanted = copy.deepcopy(rule["spec"]["trafficPolicy"])
    del wanted["connectionPool"]["tcp"]  # not in the Canary CRD (a schema check says so)
    assert canary["spec"]["service"]["trafficPolicy"] == wanted


def test_selecting_pods_by_app_would_leave_flaggers_primary_out(rendered) -> None:
    """Before progressive delivery, AuthorizationPolicy, RequestAuthentication and
    pg_hba selected `app: <service>`; Flagger's primary pods are `app: <service>-primary`,
    so they would have answered every call with deny-all's 403, skipped the end
    users' tokens, and been refused by PostgreSQL."""
    documents = rendered[PROGRESSIVE_DELIVERY]
    for kind in ("AuthorizationPolicy", "RequestAuthentication"):
        for policy in find(documents, kind):
            if policy["metadata"]["namespace"] == "shop" and policy["spec"].get("selector"):
                service = policy["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
                policy["spec"]["selector"] = {"matchLabels": {"app": service}}
    (cluster,) = find(documents, "Cluster")
    for reference in cluster["spec"]["podSelectorRefs"]:
        reference["selector"] = {"matchLabels": {"app": reference["name"]}}
    running = as_running(documents)
    problems = every_pod_problems(running) + database_consistency.database_problems(running)
    assert problems
    assert all("-primary" in p or "own pods get reject" in p for p in problems), problems
    assert "Deployment order-primary: no RequestAuthentication checks its end users' tokens" in (
        problems
    )
    assert "pg_hba: payment_gateway's own pods get reject for role payment_gateway" in problems
