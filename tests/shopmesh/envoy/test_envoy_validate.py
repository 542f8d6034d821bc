"""Every rendered Envoy config passes `envoy --mode validate` (with throwaway certs)."""

import copy

import pytest
import yaml

PROXIES = ["edge", "catalog-0", "inventory-0", "payment-0", "order-0"]


@pytest.mark.parametrize("proxy", PROXIES)
def test_rendered_config_validates(proxy, configs, tmp_path, validate):
    path = tmp_path / f"{proxy}.yaml"
    path.write_text(yaml.safe_dump(configs[proxy]))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_catches_a_broken_config(configs, tmp_path, validate):
    """The check above can fail: a cert path that does not exist is rejected."""
    broken = copy.deepcopy(configs["catalog-0"])
    tls = broken["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]
    tls["typed_config"]["common_tls_context"]["tls_certificates"][0]["certificate_chain"] = {
        "filename": str(tmp_path / "missing.pem")
    }
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert validate(path).returncode != 0
