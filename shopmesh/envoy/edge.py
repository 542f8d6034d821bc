"""The edge proxy's Envoy bootstrap: REST/JSON and gRPC in, mTLS to the replicas."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import grpc

from mesh import contracts
from shopmesh.envoy import common, end_users, json_guard, lua_guard, openapi
from shopmesh.envoy.templates import fill
from shopmesh.identity.certs import WorkloadCert
from shopmesh.topology import Topology

__all__ = ["CHECKOUT", "EDGE", "EdgeSettings", "render"]

EDGE = "edge"  # the edge's workload name in shopmesh/topology.yaml
# The RPC the flash-sale rate limit guards (REST: POST /v1/orders).
CHECKOUT = ("order", "PlaceOrder")
RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"
# Browser origins allowed by CORS: pages served from this machine, any port.
LOCAL_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?"

# How often a customer's checkout bucket refills: a 429 says to retry after it.
CHECKOUT_FILL_SECONDS = 1
# Customers whose checkout buckets the edge keeps (least recently seen dropped first).
CHECKOUT_MAX_CUSTOMERS = 100_000

# gRPC code of each HTTP status the edge itself answers with (malformed
# requests, no or a bad token, limits, no route), the inverse of the
# transcoder's mapping.
_LOCAL_REPLY_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # A URL or headers too large: the request is malformed, not rate limited.
    431: grpc.StatusCode.INVALID_ARGUMENT,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


# Load shedding by measured latency (fragments/edge/adaptive_concurrency.yaml), one
# limiter per class of requests: browsing (the catalog) and orders, each keeping
# its p90 near ideal x (1 + buffer), far under the SLO's p99 of 500 ms (the ideal
# latencies are EdgeSettings'). A shed request is answered 429 with retry advice
# (fragments/edge/shed_reply_mapper.yaml). A checkout may take 2.5 times as long
# as a catalog call before checkouts are shed: on a saturated machine browsing is
# shed first and checkouts keep their place. Envoy keeps each limit between
# min_concurrency and max_concurrency requests in flight, so a small burst is
# never shed. The limiters come last before the router: what the edge refuses by
# itself (a malformed body, a bad token, a customer's checkout limit) never
# reaches them, so neither takes a slot (a client trickling a body cannot hold
# one) nor dilutes their latency samples with its instant answer.
SHEDDING = {
    "browsing": {"path_prefix": "/shop.catalog.", "buffer_percent": 100, "min_concurrency": 8,
                 "max_concurrency": 512},
    "orders": {"path_prefix": "/shop.order.", "buffer_percent": 100, "min_concurrency": 16,
               "max_concurrency": 512},
}  # fmt: skip
SHED_RETRY_SECONDS = 1
SHED_MESSAGE = "the shop is busy right now; try again in a second"
_SHED = "response.code_details == 'reached_concurrency_limit'"


@dataclass(frozen=True)
class EdgeSettings:
    """What a developer may want to change about the edge."""

    address: str = common.LOOPBACK
    port: int = 8080  # 0: any free port (read back from the admin API)
    # Per customer (token subject): checkouts accepted at once, and sustained per second.
    checkout_burst: int = 5
    checkout_per_second: int = 1
    max_request_bytes: int = 64 * 1024
    # The request line and headers together (Envoy: 431 beyond). A URL past it is
    # no request of this API, and everything the edge accepts reaches the
    # services within their gRPC metadata limit (services/runtime/server.py).
    max_request_headers_kb: int = 16
    origins: str = LOCAL_ORIGINS  # CORS: a regex over the Origin header
    # Load shedding: the latency (s) a catalog call and an order call may take while
    # the shop is not overloaded; the edge sheds what would make a class's p90 twice
    # that (SHEDDING): 300 ms for orders, under the SLO's p99 of 500 ms (at 400 ms
    # the admitted p99 went past 500 ms at 1.5x capacity). Not tighter: targets of
    # 250 / 80 ms shed a fifth of the checkouts at a fifth of capacity on a machine
    # slowed by other work, when a checkout cost twice the CPU it does now.
    browsing_ideal_seconds: float = 0.06
    orders_ideal_seconds: float = 0.15


def _checkout_limit(settings: EdgeSettings) -> dict[str, Any]:
    return {
        RATE_LIMIT_FILTER: fill(
            "edge/checkout_rate_limit",
            customer_header=end_users.CUSTOMER_HEADER,
            burst=settings.checkout_burst,
            per_second=settings.checkout_per_second,
            fill_interval=common.duration(CHECKOUT_FILL_SECONDS),
            max_customers=CHECKOUT_MAX_CUSTOMERS,
            retry_after=str(CHECKOUT_FILL_SECONDS),
        )
    }


def _routes(topology: Topology, settings: EdgeSettings, spec: pathlib.Path) -> list[dict[str, Any]]:
    """A route per RPC the edge may call (shopmesh/topology.yaml), and the OpenAPI
    description of those with an HTTP rule; nothing else is reachable.

    Each says whether its calls need an end user's token; checkout adds its limit."""
    checkout = contracts.service(CHECKOUT[0]).methods[CHECKOUT[1]].path
    routes = [openapi.route(spec)]
    for service in topology.upstreams(EDGE):
        for path in topology.callers(service)[EDGE]:
            per_filter = end_users.route_requirement(topology, service)
            if path == checkout:
                per_filter.update(_checkout_limit(settings))
            routes.append(common.method_route(contracts.method_policy(path), service, per_filter))
    return [*routes, fill("edge/not_found_route")]


def _transcoded_services(topology: Topology) -> list[contracts.ServiceContract]:
    """The services the edge calls that have REST mappings."""
    return [
        contracts.service(name)
        for name in topology.upstreams(EDGE)
        if any(m.http is not None for m in contracts.service(name).methods.values())
    ]


# The edge's own replies that Envoy would tell a native gRPC client as a server
# failure (400 as INTERNAL, 413 as UNKNOWN): they get their _LOCAL_REPLY_CODES code.
_GRPC_MISTRANSLATED = (400, 413)

# What a client is told when the edge itself cannot get an answer (5xx). Envoy's
# own text ("upstream connect error or disconnect/reset before headers ...")
# describes the mesh's plumbing, not the shop.
UNAVAILABLE_MESSAGE = "the shop cannot answer this request now; try again shortly"


def _details(status: int) -> list[dict[str, Any]]:
    """Details of the edge's own JSON errors: a 429 says when to try again."""
    if status != 429:
        return []
    return [
        {
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": common.duration(CHECKOUT_FILL_SECONDS),
        }
    ]


# jwt_authn's 403 (a token for another audience); and a REST client's request, which
# the transcoder has turned into gRPC (native gRPC clients never carry this header:
# the edge drops x-envoy-* headers from outside).
_TOKEN_REFUSED = "response.code == 403 && response.code_details.startsWith('jwt_authn')"
_FROM_REST = "'x-envoy-original-path' in request.headers"


def _token_refusals() -> list[dict[str, Any]]:
    unauthenticated = {
        "json_format": {
            "code": grpc.StatusCode.UNAUTHENTICATED.value[0],
            "message": "%LOCAL_REPLY_BODY%",
            "details": [],
        }
    }
    return [
        fill(
            "edge/token_refusal_mapper",
            expression=f"{_TOKEN_REFUSED} && {_FROM_REST}",
            body=unauthenticated,
        ),
        fill("edge/token_refusal_mapper", expression=_TOKEN_REFUSED, body=None),
    ]


def _shedding(settings: EdgeSettings) -> dict[str, Any]:
    """The listener's shedding filters, by placeholder (shed_browsing, shed_orders)."""
    ideal = {"browsing": settings.browsing_ideal_seconds, "orders": settings.orders_ideal_seconds}
    return {
        f"shed_{name}": fill(
            "edge/adaptive_concurrency",
            name=f"shopmesh.shed_{name}",
            runtime_key=f"shedding.{name}.enabled",
            ideal=common.duration(max(ideal[name], 0.001)),  # Envoy counts whole ms
            **limits,
        )
        for name, limits in SHEDDING.items()
    }


def _shed_replies() -> list[dict[str, Any]]:
    """A shed request's 429 with retry advice: JSON for REST clients, else gRPC's status."""
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo",
             "retryDelay": common.duration(SHED_RETRY_SECONDS)}  # fmt: skip
    body = {"json_format": {"code": exhausted, "message": "%LOCAL_REPLY_BODY%",
                            "details": [retry]}}  # fmt: skip
    retry_after = _header("retry-after", str(SHED_RETRY_SECONDS))
    return [
        fill("edge/shed_reply_mapper", expression=f"{_SHED} && {_FROM_REST}", body=body,
             headers=[retry_after], message=SHED_MESSAGE),
        fill("edge/shed_reply_mapper", expression=_SHED, body=None, message=SHED_MESSAGE,
             headers=[retry_after, _header("grpc-status", str(exhausted))]),
    ]  # fmt: skip


def _header(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _message(status: int, settings: EdgeSettings) -> str:
    if status >= 500:
        return UNAVAILABLE_MESSAGE
    if status == 431:
        return (
            "the request's URL and headers together are larger than "
            f"{settings.max_request_headers_kb} KiB"
        )
    return "%LOCAL_REPLY_BODY%"


def _json_errors(settings: EdgeSettings) -> dict[str, Any]:
    mappers = (
        _token_refusals()
        + _shed_replies()
        + [
            fill(
                "edge/json_error_mapper",
                http_status=status,
                grpc_code=code.value[0],
                details=_details(status),
                message=_message(status, settings),
            )
            for status, code in _LOCAL_REPLY_CODES.items()
        ]
    )
    mappers += [
        fill(
            "edge/grpc_status_mapper",
            http_status=status,
            grpc_code=str(_LOCAL_REPLY_CODES[status].value[0]),
        )
        for status in _GRPC_MISTRANSLATED
    ]
    # Native gRPC clients keep their status; their message is ours too.
    mappers.append(fill("edge/grpc_error_mapper", message=UNAVAILABLE_MESSAGE))
    return fill("edge/json_errors", mappers=mappers)


def render(
    topology: Topology,
    identity: WorkloadCert,
    files: common.MeshFiles,
    descriptor: pathlib.Path,
    settings: EdgeSettings | None = None,
    health: common.HealthChecking | None = None,
    *,
    spec: pathlib.Path,
) -> dict[str, Any]:
    """The edge's bootstrap. `descriptor` is the transcoder's descriptor set, `spec`
    the OpenAPI description it serves (shopmesh/envoy/openapi.py)."""
    settings = settings or EdgeSettings()
    health = health or common.HealthChecking()
    listener = fill(
        "edge/listener",
        address=settings.address,
        port=settings.port,
        access_log=common.access_log(EDGE),
        json_errors=_json_errors(settings),
        max_request_headers_kb=settings.max_request_headers_kb,
        strip_headers=end_users.strip_filter(),
        body_limit=fill("edge/body_limit", max_request_bytes=settings.max_request_bytes),
        transcoder=fill(
            "edge/transcoder",
            descriptor=str(descriptor),
            services=[s.full_name for s in _transcoded_services(topology)],
        ),
        header_guard=lua_guard.render("header_guard"),
        json_guard=json_guard.render(_transcoded_services(topology)),
        end_user_tokens=end_users.edge_filter(topology, str(files.jwks)),
        **_shedding(settings),
        cors=fill("edge/cors", allowed_origins=[{"safe_regex": {"regex": settings.origins}}]),
        routes=_routes(topology, settings, spec),
        max_direct_response_bytes=openapi.MAX_BYTES,
    )
    clusters = [
        cluster
        for service in topology.upstreams(EDGE)
        for cluster in common.upstream_clusters(service, topology, identity, files, health, EDGE)
    ]
    return common.bootstrap(EDGE, EDGE, [listener], clusters, files)
