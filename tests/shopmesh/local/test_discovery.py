"""Discovery files: whole DiscoveryResponses, replaced atomically, new version each time."""

import yaml

from shopmesh.envoy import discovery


def test_endpoints_are_published_as_a_cluster_load_assignment(tmp_path):
    path = discovery.write_endpoints(
        tmp_path, "catalog", [("127.0.0.1", 1001), ("127.0.0.1", 1002)]
    )
    document = yaml.safe_load(path.read_text())
    (assignment,) = document["resources"]
    assert assignment["@type"] == discovery.CLUSTER_LOAD_ASSIGNMENT
    assert assignment["cluster_name"] == "catalog"
    ports = [
        e["endpoint"]["address"]["socket_address"]["port_value"]
        for e in assignment["endpoints"][0]["lb_endpoints"]
    ]
    assert ports == [1001, 1002]


def test_each_write_replaces_the_file_with_a_new_version(tmp_path):
    first = discovery.write_endpoints(tmp_path, "order", [("127.0.0.1", 1)])
    version = yaml.safe_load(first.read_text())["version_info"]
    inode = first.stat().st_ino
    second = discovery.write_endpoints(tmp_path, "order", [])
    assert second == first
    document = yaml.safe_load(second.read_text())
    assert document["version_info"] != version
    assert document["resources"][0]["endpoints"] == []
    # A rename, not a rewrite in place: Envoy watches for moves into the directory.
    assert second.stat().st_ino != inode
    assert [p.name for p in tmp_path.iterdir()] == ["order.yaml"]
