"""The rendered configs say what shopmesh/topology.yaml and the contracts say, nothing more."""

import dataclasses
import json

import pytest

from mesh import contracts
from shopmesh.envoy import common, edge, end_users, openapi, routing, sidecar

SERVICES = ["catalog", "inventory", "payment", "order"]


def listeners(config: dict) -> dict[str, dict]:
    return {item["name"]: item for item in config["static_resources"]["listeners"]}


def clusters(config: dict) -> dict[str, dict]:
    return {item["name"]: item for item in config["static_resources"]["clusters"]}


def http_manager(listener: dict) -> dict:
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def routes(listener: dict) -> list[dict]:
    return http_manager(listener)["route_config"]["virtual_hosts"][0]["routes"]


def http_filter(listener: dict, name: str) -> dict:
    return next(f for f in http_manager(listener)["http_filters"] if f["name"] == name)


@pytest.mark.parametrize("service", SERVICES)
def test_inbound_rbac_allows_exactly_the_declared_callers(service, configs, topology):
    rbac = http_filter(listeners(configs[f"{service}-0"])["inbound"], "envoy.filters.http.rbac")
    rules = rbac["typed_config"]["rules"]
    assert rules["action"] == "ALLOW"
    allowed: dict[tuple[str, bool], set[str]] = {}
    for policy in rules["policies"].values():
        paths = {
            p["url_path"]["path"]["exact"] for p in policy["permissions"][0]["or_rules"]["rules"]
        }
        callers, *also = policy["principals"][0]["and_ids"]["ids"]
        needs_end_user = also == [end_users.principal()]
        assert also in ([], [end_users.principal()])
        for principal in callers["or_ids"]["ids"]:
            name = principal["authenticated"]["principal_name"]["exact"]
            allowed.setdefault((name, needs_end_user), set()).update(paths)
    health = set(sidecar.HEALTH_METHODS)
    expected = {(topology.spiffe_id(w), False): set(health) for w in topology.workloads}
    for caller, paths in topology.callers(service).items():
        key = (topology.spiffe_id(caller), topology.needs_end_user(service))
        expected[key] = expected.get(key, set()) | set(paths)
    assert allowed == expected


@pytest.mark.parametrize("service", SERVICES)
def test_only_a_sidecar_of_a_service_acting_for_end_users_checks_tokens(service, configs, topology):
    inbound = listeners(configs[f"{service}-0"])["inbound"]
    names = [f["name"] for f in http_manager(inbound)["http_filters"]]
    checks = topology.needs_end_user(service)
    assert names == [
        "envoy.filters.http.header_mutation",
        *([end_users.JWT_FILTER] if checks else []),
        "envoy.filters.http.rbac",
        "envoy.filters.http.router",
    ]
    strip = http_filter(inbound, "envoy.filters.http.header_mutation")["typed_config"]
    removed = {m["remove"] for m in strip["mutations"]["request_mutations"]}
    assert removed == {end_users.CLAIMS_HEADER, end_users.CUSTOMER_HEADER}
    if checks:
        tokens = http_filter(inbound, end_users.JWT_FILTER)["typed_config"]
        provider = tokens["providers"]["end_users"]
        assert provider["issuer"] == topology.end_users.issuer
        assert provider["audiences"] == [topology.end_users.audience]
        assert provider["forward_payload_header"] == end_users.CLAIMS_HEADER
        assert provider["forward"] is False  # the app gets claims, never the token


@pytest.mark.parametrize("service", SERVICES)
def test_inbound_requires_a_client_certificate_from_the_mesh_ca(service, configs, mesh_files):
    _, files, _ = mesh_files
    inbound = listeners(configs[f"{service}-0"])["inbound"]
    tls = inbound["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == str(
        files.ca
    )


@pytest.mark.parametrize("service", SERVICES)
def test_outbound_listeners_route_only_allowed_methods_with_contract_policy(
    service, configs, topology
):
    found = listeners(configs[f"{service}-0"])
    assert set(found) == {"inbound"} | {f"outbound_{u}" for u in topology.upstreams(service)}
    for upstream in topology.upstreams(service):
        rendered = routes(found[f"outbound_{upstream}"])
        assert {r["match"]["path"] for r in rendered} == set(topology.callers(upstream)[service])
        for route in rendered:
            policy = contracts.method_policy(route["match"]["path"])
            assert route["route"]["weighted_clusters"] == routing.weighted_clusters(upstream)
            assert route["route"]["timeout"] == common.duration(policy.timeout)
            assert ("retry_policy" in route["route"]) == common.proxy_may_retry(policy)


@pytest.mark.parametrize("proxy", ["edge", "order-0"])
def test_upstream_clusters_balance_per_request_and_check_health(proxy, configs, topology):
    workload = "edge" if proxy == "edge" else "order"
    upstream = clusters(configs[proxy])
    assert set(upstream) - {"local_app"} == {
        cluster for service in topology.upstreams(workload) for cluster in routing.clusters(service)
    }
    for name, cluster_name in [
        (service, cluster)
        for service in topology.upstreams(workload)
        for cluster in routing.clusters(service)
    ]:
        cluster = upstream[cluster_name]
        assert cluster["eds_cluster_config"]["service_name"] == cluster_name
        assert cluster["lb_policy"] == "LEAST_REQUEST"
        assert cluster["type"] == "EDS"
        check = cluster["health_checks"][0]
        assert check["grpc_health_check"]["service_name"] == contracts.service(name).full_name
        assert float(check["no_traffic_interval"].rstrip("s")) < 1
        tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        assert tls["tls_certificates"][0]["certificate_chain"]["filename"].endswith(
            f"/{workload}.pem"
        )
        san = tls["validation_context"]["match_typed_subject_alt_names"][0]
        assert san == {"san_type": "URI", "matcher": {"exact": topology.spiffe_id(name)}}
        assert "outlier_detection" in cluster


def test_edge_routes_exactly_what_the_edge_may_call(configs, topology):
    rendered = routes(listeners(configs["edge"])["edge"])
    description, *methods, fallback = rendered
    assert description["match"]["path"] == openapi.PATH
    assert description["direct_response"]["status"] == 200
    expected = {p for s in topology.upstreams("edge") for p in topology.callers(s)["edge"]}
    assert {r["match"]["path"] for r in methods} == expected
    assert fallback["match"] == {"prefix": "/"}
    assert fallback["route"]["cluster_not_found_response_code"] == "NOT_FOUND"
    internal = [p for s in contracts.services().values() for p in s.methods.values() if p.internal]
    assert not {p.path for p in internal} & expected


def test_only_checkout_is_rate_limited_at_the_edge(configs):
    checkout = contracts.service("order").methods["PlaceOrder"].path
    limited = [
        r["match"]["path"]
        for r in routes(listeners(configs["edge"])["edge"])
        if "envoy.filters.http.local_ratelimit" in r.get("typed_per_filter_config", {})
    ]
    assert limited == [checkout]


def test_edge_transcodes_the_public_services_strictly(configs):
    listener = listeners(configs["edge"])["edge"]
    transcoder = http_filter(listener, "envoy.filters.http.grpc_json_transcoder")["typed_config"]
    assert set(transcoder["services"]) == {
        "shop.catalog.v1.CatalogService",
        "shop.order.v1.OrderService",
    }
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["ignore_unknown_query_parameters"] is False
    assert transcoder["request_validation_options"]["reject_unknown_query_parameters"] is True
    order = [f["name"] for f in http_manager(listener)["http_filters"]]
    assert order == [
        "envoy.filters.http.cors",
        "envoy.filters.http.header_mutation",
        "shopmesh.header_guard",
        "envoy.filters.http.buffer",
        "envoy.filters.http.lua",
        "envoy.filters.http.grpc_json_transcoder",
        end_users.JWT_FILTER,
        "envoy.filters.http.local_ratelimit",
        "shopmesh.shed_browsing",
        "shopmesh.shed_orders",
        "envoy.filters.http.router",
    ]


def test_the_edge_sheds_browsing_and_orders_by_their_own_latency(configs):
    """Two adaptive-concurrency limiters, each for one class of gRPC methods (after
    transcoding), orders allowed more latency than browsing: browsing is shed first."""
    listener = listeners(configs["edge"])["edge"]
    manager = http_manager(listener)
    targets = {}
    for name, prefix in (("browsing", "/shop.catalog."), ("orders", "/shop.order.")):
        wrapped = http_filter(listener, f"shopmesh.shed_{name}")["typed_config"]
        (matcher,) = wrapped["xds_matcher"]["matcher_list"]["matchers"]
        skipped = matcher["predicate"]["not_matcher"]["single_predicate"]
        assert skipped["value_match"] == {"prefix": prefix}  # skipped unless it is the class
        config = wrapped["extension_config"]["typed_config"]
        assert config["concurrency_limit_exceeded_status"] == {"code": "TooManyRequests"}
        rtt = config["gradient_controller_config"]["min_rtt_calc_params"]
        targets[name] = float(rtt["fixed_value"].rstrip("s")) * (1 + rtt["buffer"]["value"] / 100)
    assert targets["orders"] > 2 * targets["browsing"]
    assert max(targets.values()) < 0.5  # far under the SLO's p99
    mappers = manager["local_reply_config"]["mappers"]
    shed = [m for m in mappers if "reached_concurrency_limit" in json.dumps(m)]
    assert [m["status_code"] for m in shed] == [429, 429]
    for mapper in shed:
        headers = [h["header"] for h in mapper["headers_to_add"]]
        assert {"key": "retry-after", "value": "1"} in headers


def test_edge_routes_need_a_token_exactly_where_the_service_acts_for_end_users(configs, topology):
    listener = listeners(configs["edge"])["edge"]
    description, *methods, fallback = routes(listener)
    # Anyone may read the API's description: no token required there.
    assert end_users.JWT_FILTER not in description["typed_per_filter_config"]
    for route in methods:
        service = contracts.method_policy(route["match"]["path"]).service
        requirement = route["typed_per_filter_config"][end_users.JWT_FILTER]["requirement_name"]
        expected = (
            end_users.ROUTE_REQUIRES_CUSTOMER
            if topology.needs_end_user(service)
            else end_users.ROUTE_TOKEN_OPTIONAL
        )
        assert requirement == expected, route["match"]["path"]
    assert "typed_per_filter_config" not in fallback
    tokens = http_filter(listener, end_users.JWT_FILTER)["typed_config"]
    provider = tokens["providers"]["end_users"]
    assert provider["forward"] is True  # the order sidecar verifies the token again
    assert provider["claim_to_headers"] == [
        {"header_name": end_users.CUSTOMER_HEADER, "claim_name": "sub"}
    ]


def test_edge_settings_change_the_rendered_edge(mesh_files, topology, tmp_path):
    _, files, issued = mesh_files
    settings = edge.EdgeSettings(port=18080, checkout_burst=3, max_request_bytes=1234)
    config = edge.render(
        topology, issued["edge"], files, tmp_path / "d.binpb", settings, spec=tmp_path / "o.json"
    )
    listener = listeners(config)["edge"]
    assert listener["address"]["socket_address"]["port_value"] == 18080
    body_limit = http_filter(listener, "envoy.filters.http.buffer")["typed_config"]
    assert body_limit["max_request_bytes"] == 1234
    (checkout,) = [
        r["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
        for r in routes(listener)
        if "envoy.filters.http.local_ratelimit" in r.get("typed_per_filter_config", {})
    ]
    (per_customer,) = checkout["descriptors"]
    assert per_customer["entries"] == [{"key": "customer"}]  # no value: a bucket per customer
    assert per_customer["token_bucket"]["max_tokens"] == 3
    (action,) = checkout["rate_limits"][0]["actions"]
    assert action["request_headers"]["header_name"] == end_users.CUSTOMER_HEADER
    assert checkout["always_consume_default_token_bucket"] is False
    assert checkout["rate_limited_as_resource_exhausted"] is True


def test_every_contract_method_is_retry_safe_at_the_proxy():
    """Reads, and mutations deduplicated on a required request_id."""
    for service in contracts.services().values():
        for policy in service.methods.values():
            assert common.proxy_may_retry(policy), policy.path


def test_a_method_with_no_idempotency_promise_gets_no_retries():
    policy = contracts.method_policy("/shop.catalog.v1.CatalogService/GetProduct")
    unsafe = dataclasses.replace(policy, idempotency=contracts.Idempotency.UNKNOWN)
    assert not common.proxy_may_retry(unsafe)
    route = common.method_route(unsafe, "catalog")
    assert "retry_policy" not in route["route"]
    assert route["route"]["timeout"] == common.duration(policy.timeout)


def test_retries_happen_only_on_failures_where_the_call_can_be_repeated():
    policy = contracts.method_policy("/shop.order.v1.OrderService/PlaceOrder")
    retry = common.method_route(policy, "order")["route"]["retry_policy"]
    assert retry["retry_on"].split(",") == [
        "unavailable",
        "reset",
        "connect-failure",
        "refused-stream",
    ]
    assert retry["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"
