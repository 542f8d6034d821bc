"""The descriptor set the edge's gRPC-JSON transcoder loads.

It is gen/descriptor/shop.binpb (built from proto/ by `make gen`) plus the
google.rpc error types: services put ErrorInfo / BadRequest details in their
errors, and the transcoder prints a detail as JSON only if its type is in the
set. They come from the installed googleapis-common-protos, the release the
services encode them with.
"""

from __future__ import annotations

import pathlib

from google.protobuf import descriptor, descriptor_pb2
from google.rpc import error_details_pb2, status_pb2

from mesh.local.render.templates import ENVOY_DIR

__all__ = ["SHOP_DESCRIPTOR", "write_transcoder_descriptor"]

SHOP_DESCRIPTOR = ENVOY_DIR.parent / "gen" / "descriptor" / "shop.binpb"
ERROR_TYPES = (status_pb2.DESCRIPTOR, error_details_pb2.DESCRIPTOR)


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


def _load() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(SHOP_DESCRIPTOR.read_bytes())


def write_transcoder_descriptor(target: pathlib.Path) -> pathlib.Path:
    files = _load()
    present = {f.name for f in files.file}
    for file in ERROR_TYPES:
        _append(file, files, present)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(files.SerializeToString())
    return target
