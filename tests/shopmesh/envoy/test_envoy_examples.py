"""envoy/examples/: committed, current, and each a config Envoy accepts."""

from shopmesh import cli
from shopmesh.envoy import examples
from shopmesh.local.mesh import envoy_binary


def test_the_committed_examples_match_a_fresh_render():
    assert examples.check() == []


def test_each_example_validates_in_envoy(tmp_path):
    """With its mount paths pointed at throwaway files of the same names."""
    runs = examples.validate(envoy_binary(), tmp_path)
    assert sorted(runs) == ["edge.yaml", "order-sidecar.yaml"]
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stdout + run.stderr)


def test_the_command_validates_them_as_readers_are_told(capsys):
    assert cli.main(["validate", "--envoy"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "envoy/examples/edge.yaml: valid (envoy --mode validate)",
        "envoy/examples/order-sidecar.yaml: valid (envoy --mode validate)",
    ]
