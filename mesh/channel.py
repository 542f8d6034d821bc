"""The channel factory: `mesh.connect("inventory")` and its asyncio twin `mesh.aio_connect`.

The address and credentials come from the mesh configuration (mesh.config); the
interceptor chain is the one documented in mesh.interceptors. Use the returned
channel with the generated stub: `contracts.service("inventory").stub(channel)`.
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.trace import TracerProvider

from mesh import config as mesh_config
from mesh.interceptors import (
    BreakerInterceptor,
    DeadlineInterceptor,
    RetryInterceptor,
    RetryPolicy,
)
from mesh.interceptors._aio_chain import MeshChannel
from mesh.interceptors.tracing import ClientSpans, aio_stream_tracing, client_tracing
from mesh.retry_budget import RetryBudget

__all__ = ["aio_connect", "connect"]

# Spread calls over every address a target resolves to, rather than pinning one.
CHANNEL_OPTIONS = (("grpc.lb_policy_name", "round_robin"),)

_budgets: dict[str, RetryBudget] = {}


def _budget(upstream: str) -> RetryBudget:
    # One budget per upstream per process, shared by all channels to it.
    return _budgets.setdefault(upstream, RetryBudget())


def _target_and_credentials(
    upstream: mesh_config.Upstream,
) -> tuple[str, grpc.ChannelCredentials | None, tuple]:
    if upstream.tls is None:
        return upstream.address, None, CHANNEL_OPTIONS
    tls = upstream.tls
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(),
        private_key=tls.key.read_bytes(),
        certificate_chain=tls.cert.read_bytes(),
    )
    options = CHANNEL_OPTIONS
    if tls.server_name:
        options += (("grpc.ssl_target_name_override", tls.server_name),)
    return upstream.address, credentials, options


def _retry_policy(cfg: mesh_config.MeshConfig, retry: RetryPolicy | None) -> RetryPolicy:
    return retry or RetryPolicy(enabled=cfg.app_retries)


def connect(
    name: str,
    *,
    config: mesh_config.MeshConfig | None = None,
    retry: RetryPolicy | None = None,
    tracer_provider: TracerProvider | None = None,
) -> grpc.Channel:
    """A blocking-API channel to the upstream service `name`, interceptors applied.

    Spans go to `tracer_provider`, by default the process's global one.
    """
    cfg = config or mesh_config.load()
    target, credentials, options = _target_and_credentials(cfg.upstream(name))
    channel = (
        grpc.secure_channel(target, credentials, options=options)
        if credentials
        else grpc.insecure_channel(target, options=options)
    )
    resilient = grpc.intercept_channel(
        channel,
        DeadlineInterceptor(),
        RetryInterceptor(name, _retry_policy(cfg, retry), _budget(name)),
        BreakerInterceptor(name),
    )
    return client_tracing(resilient, tracer_provider)


def aio_connect(
    name: str,
    *,
    config: mesh_config.MeshConfig | None = None,
    retry: RetryPolicy | None = None,
    tracer_provider: TracerProvider | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel to the upstream service `name`, the client chain applied.

    The chain is the interceptors' (tracing, deadline, retry, breaker) fused into the
    channel's unary calls (mesh.interceptors._aio_chain): a grpc.aio interceptor costs
    more than all their work on the happy path. Spans go to `tracer_provider`, by
    default the process's global one.
    """
    cfg = config or mesh_config.load()
    target, credentials, options = _target_and_credentials(cfg.upstream(name))
    interceptors: list[Any] = aio_stream_tracing(tracer_provider)
    if credentials:
        channel = grpc.aio.secure_channel(
            target, credentials, options=options, interceptors=interceptors
        )
    else:
        channel = grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    spans = ClientSpans(tracer_provider)
    return MeshChannel(channel, name, _retry_policy(cfg, retry), _budget(name), spans)
