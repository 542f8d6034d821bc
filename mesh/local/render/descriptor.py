"""The descriptor set the edge's gRPC-JSON transcoder loads.

It is gen/descriptor/shop.binpb (built from proto/ by `make gen`) with two
adjustments, both made here rather than by hand:

- the google.rpc error types are added: services put ErrorInfo / BadRequest
  details in their errors, and the transcoder prints a detail as JSON only if
  its type is in the set. They come from the installed googleapis-common-protos,
  the release the services encode them with;
- `response_body` is removed from HTTP rules whose response field is not a
  google.api.HttpBody: Envoy (1.40 included) refuses to start with one
  ("not supported yet for non-HttpBody fields", envoyproxy/envoy#11136). The
  RPC is then served with the whole response message as its body, e.g.
  GET /v1/products/{id} -> {"product": {...}}. Every Envoy-based gateway
  (Istio's too) has the same limit, so proto/ should drop those settings;
  `unsupported_response_bodies()` names them and the edge warns at start.
"""

from __future__ import annotations

import pathlib

from google.api import annotations_pb2
from google.protobuf import descriptor, descriptor_pb2
from google.rpc import error_details_pb2, status_pb2

from mesh.local.render.templates import ENVOY_DIR

__all__ = ["SHOP_DESCRIPTOR", "unsupported_response_bodies", "write_transcoder_descriptor"]

SHOP_DESCRIPTOR = ENVOY_DIR.parent / "gen" / "descriptor" / "shop.binpb"
ERROR_TYPES = (status_pb2.DESCRIPTOR, error_details_pb2.DESCRIPTOR)
HTTP_BODY = ".google.api.HttpBody"


def _append(
    file: descriptor.FileDescriptor,
    files: descriptor_pb2.FileDescriptorSet,
    present: set[str],
) -> None:
    """Adds `file` after its dependencies: Envoy builds the set's files in order."""
    if file.name in present:
        return
    for dependency in file.dependencies:
        _append(dependency, files, present)
    file.CopyToProto(files.file.add())
    present.add(file.name)


def _rules_with_unsupported_response_body(files: descriptor_pb2.FileDescriptorSet):
    """(method path, its HttpRule) for every rule Envoy's transcoder cannot serve."""
    messages = {
        f".{file.package}.{message.name}": message
        for file in files.file
        for message in file.message_type
    }
    for file in files.file:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                if not rule.response_body:
                    continue
                response = messages[method.output_type]
                field = next(f for f in response.field if f.name == rule.response_body)
                if field.type_name != HTTP_BODY:
                    yield f"/{file.package}.{service.name}/{method.name}", rule


def _load() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(SHOP_DESCRIPTOR.read_bytes())


def unsupported_response_bodies() -> list[str]:
    """Methods whose HTTP rule sets a response_body Envoy cannot serve."""
    return [path for path, _ in _rules_with_unsupported_response_body(_load())]


def write_transcoder_descriptor(target: pathlib.Path) -> pathlib.Path:
    files = _load()
    for _, rule in _rules_with_unsupported_response_body(files):
        rule.ClearField("response_body")
    present = {f.name for f in files.file}
    for file in ERROR_TYPES:
        _append(file, files, present)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(files.SerializeToString())
    return target
