"""The transcoder's descriptor set: proto/'s, plus error types, minus what Envoy cannot serve."""

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from mesh.local.render import descriptor


def _load(path):
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def test_error_detail_types_are_added_after_their_dependencies(tmp_path):
    files = _load(descriptor.write_transcoder_descriptor(tmp_path / "d.binpb")).file
    names = [f.name for f in files]
    assert "google/rpc/error_details.proto" in names
    assert "google/rpc/status.proto" in names
    for index, file in enumerate(files):
        assert set(file.dependency) <= set(names[:index]), file.name


def test_only_unsupported_response_bodies_are_removed(tmp_path):
    original = {
        f"/{f.package}.{s.name}/{m.name}": m.options.Extensions[annotations_pb2.http]
        for f in _load(descriptor.SHOP_DESCRIPTOR).file
        for s in f.service
        for m in s.method
    }
    written = _load(descriptor.write_transcoder_descriptor(tmp_path / "d.binpb"))
    unsupported = set(descriptor.unsupported_response_bodies())
    for file in written.file:
        for service in file.service:
            for method in service.method:
                path = f"/{file.package}.{service.name}/{method.name}"
                if path not in original:
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                if path in unsupported:
                    assert original[path].response_body and not rule.response_body
                else:
                    assert rule == original[path]
