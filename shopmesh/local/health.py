"""Asking an app directly (plaintext, loopback) whether it is SERVING."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["UNREACHABLE", "check"]

UNREACHABLE = "UNREACHABLE"


def check(address: str, service: str = "", timeout: float = 1.0) -> str:
    """SERVING, NOT_SERVING, ... as the app reports for `service`, or UNREACHABLE."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return UNREACHABLE
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
