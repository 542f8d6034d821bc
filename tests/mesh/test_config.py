"""Where upstreams are: Kubernetes default, the runner's config file, env overrides."""

import pytest

from mesh import config


def test_default_is_the_kubernetes_service_name():
    cfg = config.load({})
    assert cfg.upstream("inventory").address == "inventory:50051"
    assert cfg.upstream("inventory").tls is None
    assert cfg.app_retries


def test_file_then_env_overrides(tmp_path):
    (tmp_path / "mesh.yaml").write_text(
        "app_retries: false\n"
        "upstreams:\n"
        "  inventory:\n"
        "    address: 127.0.0.1:15001\n"
        "    tls: {ca: ca.pem, cert: order.pem, key: order-key.pem, server_name: inventory}\n"
        "  payment: {address: 127.0.0.1:15002}\n"
    )
    env = {
        "SHOPMESH_MESH_CONFIG": str(tmp_path / "mesh.yaml"),
        "SHOPMESH_UPSTREAM_INVENTORY": "127.0.0.1:16001",
    }
    cfg = config.load(env)
    assert not cfg.app_retries
    inventory = cfg.upstream("inventory")
    assert inventory.address == "127.0.0.1:16001"  # env wins, TLS settings kept
    assert inventory.tls.ca == tmp_path / "ca.pem"  # relative to the file
    assert inventory.tls.server_name == "inventory"
    assert cfg.upstream("payment").address == "127.0.0.1:15002"


def test_app_retries_flag_is_validated():
    assert not config.load({"SHOPMESH_APP_RETRIES": "0"}).app_retries
    with pytest.raises(ValueError, match="SHOPMESH_APP_RETRIES"):
        config.load({"SHOPMESH_APP_RETRIES": "maybe"})
