"""The gRPC status codes that say a server failed, as every part of the mesh counts them."""

from __future__ import annotations

import grpc

__all__ = ["SERVER_FAULTS"]

# The server's faults, the codes gRPC's HTTP mapping makes 5xx (the rest are the
# caller's own mistakes: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...).
# Envoy counts exactly these as an upstream host's rq_error, OpenTelemetry's gRPC
# instrumentation marks a server span with one ERROR, and a release whose calls end
# in them has failed (shopmesh.rollout).
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
