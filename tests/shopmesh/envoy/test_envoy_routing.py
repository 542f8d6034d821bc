"""The split between a service's versions: a runtime tree swapped whole by a symlink rename."""

import os

import pytest

from shopmesh.envoy import routing


def test_each_service_splits_between_its_stable_and_its_canary_cluster_by_runtime_keys():
    assert routing.clusters("order") == ("order", "order-canary")
    split = routing.weighted_clusters("order")
    assert split["clusters"] == [
        {"name": "order", "weight": 100},
        {"name": "order-canary", "weight": 0},
    ]
    # Envoy reads each cluster's weight from <runtime_key_prefix>.<cluster name>.
    assert (
        routing.runtime_key("order", "order-canary")
        == f"{split['runtime_key_prefix']}.order-canary"
    )


def test_weights_are_files_of_a_tree_that_replaces_the_last_by_a_rename(tmp_path):
    first = routing.write_weights(tmp_path, {"catalog": 5})
    link = tmp_path / "current"
    assert link.is_symlink() and link.resolve() == first
    key_file = link / routing.RUNTIME_SUBDIRECTORY / "routing" / "catalog"
    assert (key_file / "catalog").read_text().strip() == "95"
    assert (key_file / "catalog-canary").read_text().strip() == "5"
    link_inode = os.lstat(link).st_ino
    second = routing.write_weights(tmp_path, {"catalog": 20, "order": 50})
    assert routing.read_weights(tmp_path) == {"catalog": 20, "order": 50}
    # A new link moved over the old one (Envoy watches for that move), not a rewrite.
    assert os.lstat(link).st_ino != link_inode and link.resolve() == second
    routing.write_weights(tmp_path, {})
    routing.write_weights(tmp_path, {})
    assert routing.read_weights(tmp_path) == {}
    # The tree in force and the one before it: nothing older piles up.
    assert len(list(tmp_path.glob("tree-*"))) == 2


def test_a_weight_is_a_percentage(tmp_path):
    with pytest.raises(ValueError, match="percentage"):
        routing.write_weights(tmp_path, {"catalog": 120})
