"""envoy/examples/: committed, current, and each a config Envoy accepts."""

import pytest

from shopmesh.envoy import descriptor, examples, openapi


def test_the_committed_examples_match_a_fresh_render():
    assert examples.check() == []


@pytest.mark.parametrize("name", sorted(examples.render()))
def test_each_example_validates_in_envoy(name, mesh_files, tmp_path, validate):
    """The example with its mount paths pointed at throwaway files of the same names."""
    root, _files, _issued = mesh_files
    descriptor.write_transcoder_descriptor(root / "transcoder.binpb")
    openapi.write(root / "openapi.json")
    text = examples.render()[name]
    text = text.replace(str(examples.MOUNT), str(root)).replace(examples.LOG_DIR, str(root))
    config = tmp_path / name
    config.write_text(text)
    result = validate(config)
    assert result.returncode == 0, result.stdout + result.stderr
