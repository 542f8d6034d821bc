"""The transcoder's descriptor set: proto/'s, plus the google.rpc error types."""

from google.protobuf import descriptor_pb2

from shopmesh.envoy import descriptor


def _load(path):
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def test_error_detail_types_are_added_after_their_dependencies(tmp_path):
    files = _load(descriptor.write_transcoder_descriptor(tmp_path / "d.binpb")).file
    names = [f.name for f in files]
    assert "google/rpc/error_details.proto" in names
    assert "google/rpc/status.proto" in names
    for index, file in enumerate(files):
        assert set(file.dependency) <= set(names[:index]), file.name
