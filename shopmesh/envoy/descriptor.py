"""The descriptor set the edge's gRPC-JSON transcoder loads.

It is built from the generated stubs that mesh.contracts loads (so it is the
exact contract the services serve, and an installed package needs no file from
a checkout), plus the google.rpc error types: services put ErrorInfo /
BadRequest details in their errors, and the transcoder prints a detail as JSON
only if its type is in the set. They come from the installed
googleapis-common-protos, the release the services encode them with.
"""

from __future__ import annotations

import pathlib

from google.protobuf import descriptor, descriptor_pb2
from google.rpc import error_details_pb2, status_pb2

from mesh import contracts

__all__ = ["transcoder_descriptor_set", "write_transcoder_descriptor"]

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


def transcoder_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    files = descriptor_pb2.FileDescriptorSet()
    present: set[str] = set()
    for service in sorted(contracts.services().values(), key=lambda s: s.name):
        _append(service.descriptor.file, files, present)
    for file in ERROR_TYPES:
        _append(file, files, present)
    return files


def write_transcoder_descriptor(target: pathlib.Path) -> pathlib.Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(transcoder_descriptor_set().SerializeToString())
    return target
