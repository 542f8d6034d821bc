"""istio/ through the platform team's own tools, as `shopmesh validate` runs them.

kustomize renders every overlay (conftest's `streams`), kubeconform -strict
validates every object it renders, and istioctl analyze finds no error or
warning. Then deliberately broken copies: each is caught, and the table says by
which tool, and which tools miss it, because what offline tools cannot see is
what the project's own consistency checks are for.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from shopmesh import cli
from shopmesh.istio import checks

from . import istio_consistency, progressive_delivery_consistency
from .flagger_view import as_running
from .istio_consistency import find
from .istio_validation import is_custom_resource, schema_problems

Documents = list[dict[str, Any]]


def _objects(stream: str) -> Documents:
    return [d for d in yaml.safe_load_all(stream) if d]


def test_kubeconform_validates_every_object_strictly(streams, schema_dir) -> None:
    for overlay, stream in streams.items():
        valid, invalid = checks.kubeconform(stream, schema_dir)
        assert invalid == [], overlay
        # None skipped for want of a schema: every object was validated.
        assert valid == len(_objects(stream)), overlay


def test_istioctl_analyze_finds_no_error_or_warning(streams) -> None:
    for overlay, stream in streams.items():
        found = [f for f in checks.analyze(stream) if f.level in checks.FAILING_LEVELS]
        assert found == [], overlay


def test_every_suppression_is_still_needed(streams) -> None:
    """A suppression that no longer matches a message would hide the next one."""
    found = {
        f"{f.code}={f.resource}"
        for stream in streams.values()
        for f in checks.analyze(stream, suppressed={})
    }
    assert set(checks.SUPPRESSED) <= found


def test_a_kind_without_a_schema_is_an_error_not_skipped(schema_dir) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    valid, invalid = checks.kubeconform(yaml.safe_dump(widget), schema_dir)
    assert valid == 0
    (finding,) = invalid
    assert finding.code == "statusError" and "Widget" in finding.resource


def test_validate_command_checks_every_overlay(schema_dir, capsys) -> None:
    assert cli.main(["validate", "--crd-schemas", str(schema_dir)]) == 0
    out = capsys.readouterr().out
    for overlay in checks.OVERLAYS:
        assert f"istio/{overlay}: " in out and "0 invalid; istioctl analyze: 0 errors" in out


def _one(documents: Documents, kind: str, name: str) -> dict[str, Any]:
    (found,) = find(documents, kind, name)
    return found


def _unknown_destination_rule_field(documents: Documents) -> None:
    policy = _one(documents, "DestinationRule", "catalog")["spec"]["trafficPolicy"]
    policy["outlierDetecton"] = policy.pop("outlierDetection")


def _unknown_container_field(documents: Documents) -> None:
    container = _one(documents, "Deployment", "catalog")["spec"]["template"]["spec"]["containers"][
        0
    ]
    container["readinesProbe"] = container.pop("readinessProbe")


def _route_to_missing_host(documents: Documents) -> None:
    route = _one(documents, "VirtualService", "catalog")["spec"]["http"][0]["route"][0]
    route["destination"]["host"] = "catalogue.shop.svc.cluster.local"


def _route_to_missing_host_by_subset(documents: Documents) -> None:
    _route_to_missing_host(documents)
    route = _one(documents, "VirtualService", "catalog")["spec"]["http"][0]["route"][0]
    route["destination"]["subset"] = "v1"


def _subset_nobody_selects(documents: Documents) -> None:
    rule = _one(documents, "DestinationRule", "catalog")
    rule["spec"]["subsets"] = [{"name": "v3", "labels": {"version": "v3"}}]


def _route_to_undefined_subset(documents: Documents) -> None:
    route = _one(documents, "VirtualService", "order")["spec"]["http"][0]["route"][0]
    route["destination"]["subset"] = "v3"


def _delegate_nobody_makes(documents: Documents) -> None:
    route = _one(documents, "VirtualService", "catalog-rpcs")["spec"]["http"][0]
    route["delegate"]["name"] = "catalogue"


def _tcp_pool_in_a_canary(documents: Documents) -> None:
    policy = _one(documents, "Canary", "order")["spec"]["service"]["trafficPolicy"]
    policy["connectionPool"]["tcp"] = {"maxConnections": 100}


def _missing_gateway(documents: Documents) -> None:
    _one(documents, "VirtualService", "ingress")["spec"]["gateways"] = ["shop/shop-gatewy"]


def _two_virtual_services_for_one_host(documents: Documents) -> None:
    again = copy.deepcopy(_one(documents, "VirtualService", "catalog"))
    again["metadata"]["name"] = "catalog-again"
    documents.append(again)


def _unknown_top_level_key(documents: Documents) -> None:
    policy = _one(documents, "AuthorizationPolicy", "order-callers")
    policy["spce"] = policy.pop("spec")


def _wrong_enum(documents: Documents) -> None:
    balancer = _one(documents, "DestinationRule", "order")["spec"]["trafficPolicy"]["loadBalancer"]
    balancer["simple"] = "LEAST_REQUESTS"


# (what is broken, the overlay, how, {tool: words one of its findings has}, tools
# that miss it). "consistency" and "schema" are the project's own checks
# (istio_consistency.py; istio_validation.schema_problems, JSON schemas in Python).
Words = tuple[str, ...]
BROKEN: list[tuple[str, str, Callable[[Documents], None], dict[str, Words], tuple[str, ...]]] = [
    (
        "an unknown field in a custom resource",
        "base",
        _unknown_destination_rule_field,
        {"kubeconform": ("DestinationRule catalog", "'outlierDetecton' not allowed")},
        # istioctl reads Istio objects leniently: the unknown field is dropped unseen.
        ("istioctl",),
    ),
    (
        "an unknown field in a built-in kind",
        "base",
        _unknown_container_field,
        {"kubeconform": ("Deployment catalog", "'readinesProbe' not allowed")},
        ("istioctl",),
    ),
    (
        "a VirtualService naming a missing host (routes by subset)",
        "base",
        _route_to_missing_host_by_subset,
        {"istioctl": ("IST0101", "host+subset in destinationrule not found", "catalogue.shop")},
        ("kubeconform",),
    ),
    (
        # Offline istioctl reads no Service from files (it drops Service, Namespace,
        # Node, Pod and Secret), so its host check (IST0101 Referenced host not
        # found) runs only against a cluster: `istioctl analyze -n shop`.
        "a VirtualService naming a missing host (no subset)",
        "base",
        _route_to_missing_host,
        {"consistency": ("goes to catalogue.shop.svc.cluster.local",)},
        ("kubeconform", "istioctl"),
    ),
    (
        # IST0173 (DestinationRuleSubsetNotSelectPods) needs Pods: a cluster's.
        "a DestinationRule subset nobody selects",
        "base",
        _subset_nobody_selects,
        {"consistency": ("catalog: subset v3 selects no Deployment's pods",)},
        ("kubeconform", "istioctl"),
    ),
    (
        "a route to a subset no DestinationRule defines",
        "base",
        _route_to_undefined_subset,
        {"istioctl": ("IST0101", 'destinationrule not found: "order.shop.svc.cluster.local+v3"')},
        ("kubeconform",),
    ),
    (
        "a VirtualService bound to a missing Gateway",
        "base",
        _missing_gateway,
        {"istioctl": ("IST0101", 'Referenced gateway not found: "shop/shop-gatewy"')},
        ("kubeconform",),
    ),
    (
        "two VirtualServices for one host",
        "base",
        _two_virtual_services_for_one_host,
        {"istioctl": ("IST0109", "shop/catalog,shop/catalog-again", "define the same host")},
        ("kubeconform",),
    ),
    (
        # The CRDs' schemas leave the top level open, so kubeconform -strict takes it;
        # Istio reads a policy without rules, which for an ALLOW policy denies all.
        "an unknown top-level key in a custom resource",
        "base",
        _unknown_top_level_key,
        {"schema": ("AuthorizationPolicy shop/order-callers", "unknown top-level key 'spce'")},
        ("kubeconform", "istioctl"),
    ),
    (
        # istioctl cannot parse the object and skips it: it says so, then analyses the rest.
        "a wrong enum",
        "base",
        _wrong_enum,
        {
            "kubeconform": ("/spec/trafficPolicy/loadBalancer/simple: value must be one of",),
            "istioctl": ("FileParseError", "LEAST_REQUESTS", "LoadBalancerSettings.SimpleLB"),
        },
        (),
    ),
    (
        # Offline istioctl does not resolve delegation; Istio would drop the route.
        "a route delegating to a VirtualService nobody makes",
        "overlays/progressive-delivery",
        _delegate_nobody_makes,
        {"consistency": ("catalog-rpcs", "goes nowhere")},
        ("kubeconform", "istioctl"),
    ),
    (
        # The Canary CRD has no connectionPool.tcp; istioctl does not read Canaries.
        "a field a Canary's CRD does not have",
        "overlays/progressive-delivery",
        _tcp_pool_in_a_canary,
        {"kubeconform": ("Canary order", "'tcp' not allowed")},
        ("istioctl",),
    ),
]


def _findings(tool: str, documents: Documents, schema_dir) -> list[str]:
    if tool == "schema":
        return [
            p for d in documents if is_custom_resource(d) for p in schema_problems(d, schema_dir)
        ]
    if tool == "consistency":
        running = as_running(documents)
        rules = istio_consistency.CHECKS + progressive_delivery_consistency.CHECKS
        return [p for rule in rules for p in rule(running)]
    stream = yaml.safe_dump_all(documents, sort_keys=False)
    if tool == "kubeconform":
        return [f"{f.resource}: {f.message}" for f in checks.kubeconform(stream, schema_dir)[1]]
    return [
        f"{f.code} {f.message}" for f in checks.analyze(stream) if f.level in checks.FAILING_LEVELS
    ]


def _says(findings: list[str], words: Words) -> bool:
    """Whether one finding has every one of `words` (messages also name files and lines)."""
    return any(all(word in finding for word in words) for finding in findings)


@pytest.mark.parametrize(
    ("broken", "overlay", "mutate", "caught", "missed"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_broken_manifest_is_caught_by_the_tool_named(
    rendered, schema_dir, broken, overlay, mutate, caught, missed
) -> None:
    documents = rendered[overlay]
    mutate(documents)
    for tool, words in caught.items():
        found = _findings(tool, documents, schema_dir)
        assert _says(found, words), f"{tool} missed {broken}: {found}"
    for tool in missed:
        assert _findings(tool, documents, schema_dir) == [], f"{tool} now sees {broken}"
