"""What the contracts say about every service and RPC, read from the generated descriptors.

This is the one place policy is read from proto/: the channel factory, the server
runtime, the Envoy renderer and the Istio checks all ask here instead of keeping
their own copy of timeouts, retry safety or HTTP mappings.
"""

from __future__ import annotations

import enum
import functools
import importlib
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import shop
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pb2, message
from shop.mesh.v1 import options_pb2

__all__ = [
    "Idempotency",
    "MethodPolicy",
    "ServiceContract",
    "method_policy",
    "service",
    "services",
]

# Used when a method declares no (shop.mesh.v1.policy).timeout_ms.
DEFAULT_TIMEOUT_S = 5.0
REQUEST_ID_FIELD = "request_id"


class Idempotency(enum.Enum):
    """protobuf's MethodOptions.IdempotencyLevel, as the mesh reads it."""

    UNKNOWN = descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN
    NO_SIDE_EFFECTS = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    IDEMPOTENT = descriptor_pb2.MethodOptions.IDEMPOTENT


@dataclass(frozen=True)
class MethodPolicy:
    """Traffic policy of one RPC, as declared in its .proto."""

    service: str  # short service name, e.g. "catalog"
    full_service: str  # e.g. "shop.catalog.v1.CatalogService"
    name: str  # e.g. "GetProduct"
    idempotency: Idempotency
    timeout: float  # seconds
    internal: bool
    http: http_pb2.HttpRule | None
    has_request_id: bool
    descriptor: descriptor.MethodDescriptor

    @property
    def path(self) -> str:
        """The gRPC method path, e.g. "/shop.catalog.v1.CatalogService/GetProduct"."""
        return f"/{self.full_service}/{self.name}"

    @property
    def is_read(self) -> bool:
        return self.idempotency is Idempotency.NO_SIDE_EFFECTS

    def retry_safe(self, request: message.Message | None = None) -> bool:
        """Whether repeating this call cannot do anything twice.

        Reads are always safe. A mutation is safe when the contract marks it
        IDEMPOTENT; if that promise rests on a request_id (the request has such a
        field), the call must actually carry one. A call that carries a
        request_id is safe whatever the marking, since the server dedupes on it.
        """
        carries_id = bool(request is not None and getattr(request, REQUEST_ID_FIELD, ""))
        if self.idempotency is Idempotency.NO_SIDE_EFFECTS:
            return True
        if self.idempotency is Idempotency.IDEMPOTENT:
            return carries_id or not self.has_request_id
        return carries_id


@dataclass(frozen=True)
class ServiceContract:
    """One service of proto/: its descriptor, generated modules and method policies."""

    name: str  # e.g. "catalog"
    descriptor: descriptor.ServiceDescriptor
    messages: ModuleType  # <name>_pb2
    grpc: ModuleType  # <name>_pb2_grpc

    @property
    def full_name(self) -> str:
        return self.descriptor.full_name

    @functools.cached_property
    def methods(self) -> dict[str, MethodPolicy]:
        return {m.name: _policy_of(self.name, m) for m in self.descriptor.methods}

    def stub(self, channel: Any) -> Any:
        """The generated client stub for this service on a channel."""
        return getattr(self.grpc, f"{self.descriptor.name}Stub")(channel)

    @property
    def servicer_base(self) -> type:
        return getattr(self.grpc, f"{self.descriptor.name}Servicer")

    def add_to_server(self, servicer: Any, server: Any) -> None:
        getattr(self.grpc, f"add_{self.descriptor.name}Servicer_to_server")(servicer, server)


def _policy_of(service_name: str, method: descriptor.MethodDescriptor) -> MethodPolicy:
    options = method.GetOptions()
    declared = options.Extensions[options_pb2.policy]
    http = (
        options.Extensions[annotations_pb2.http]
        if options.HasExtension(annotations_pb2.http)
        else None
    )
    return MethodPolicy(
        service=service_name,
        full_service=method.containing_service.full_name,
        name=method.name,
        idempotency=Idempotency(options.idempotency_level),
        timeout=declared.timeout_ms / 1000 if declared.timeout_ms else DEFAULT_TIMEOUT_S,
        internal=declared.internal,
        http=http,
        has_request_id=REQUEST_ID_FIELD in method.input_type.fields_by_name,
        descriptor=method,
    )


def _message_modules() -> Iterator[tuple[str, str]]:
    """(service name, module name) of every generated shop.<name>.v1.*_pb2 module."""
    for root in shop.__path__:
        for path in sorted(pathlib.Path(root).glob("*/v1/*_pb2.py")):
            name = path.parent.parent.name
            yield name, f"shop.{name}.v1.{path.stem}"


@functools.cache
def services() -> dict[str, ServiceContract]:
    """Every service the contracts define, by short name ("catalog", ...)."""
    found: dict[str, ServiceContract] = {}
    for name, module_name in _message_modules():
        messages = importlib.import_module(module_name)
        for service_descriptor in messages.DESCRIPTOR.services_by_name.values():
            found[name] = ServiceContract(
                name=name,
                descriptor=service_descriptor,
                messages=messages,
                grpc=importlib.import_module(f"{module_name}_grpc"),
            )
    return found


def service(name: str) -> ServiceContract:
    try:
        return services()[name]
    except KeyError:
        raise KeyError(f"no service {name!r} in proto/; known: {sorted(services())}") from None


@functools.cache
def _by_path() -> dict[str, MethodPolicy]:
    return {p.path: p for s in services().values() for p in s.methods.values()}


def method_policy(path: str) -> MethodPolicy:
    """Policy of a method by its gRPC path ("/shop.catalog.v1.CatalogService/GetProduct")."""
    try:
        return _by_path()[path]
    except KeyError:
        raise KeyError(f"no RPC {path!r} in proto/") from None
