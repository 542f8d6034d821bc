"""The local CA issues SPIFFE workload certificates for every workload in the topology."""

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from shopmesh import topology as mesh_topology
from shopmesh.identity import certs


def _load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_workload_gets_its_spiffe_identity_signed_by_the_ca(tmp_path):
    topology = mesh_topology.load()
    issued = certs.issue_all(tmp_path, topology)
    assert set(issued) == set(topology.workloads)
    assert {"edge", "storefront-node", "ops"} <= set(issued)
    ca = _load(tmp_path / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for workload, cert_files in issued.items():
        cert = _load(cert_files.cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        assert uris == [f"spiffe://cluster.local/ns/shop/sa/{workload}"]
        assert cert_files.spiffe_id == uris[0]
        cert.verify_directly_issued_by(ca)
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert_files.key.stat().st_mode & 0o077 == 0


def test_the_ca_is_reused_and_certificates_renewed(tmp_path):
    topology = mesh_topology.load()
    first = certs.issue_all(tmp_path, topology)["order"]
    first_ca, first_cert = (tmp_path / "ca.pem").read_bytes(), first.cert.read_bytes()
    second = certs.issue_all(tmp_path, topology)["order"]
    assert (tmp_path / "ca.pem").read_bytes() == first_ca
    assert second.cert.read_bytes() != first_cert
    _load(second.cert).verify_directly_issued_by(_load(tmp_path / "ca.pem"))


def test_a_foreign_ca_does_not_sign_mesh_identities(tmp_path):
    topology = mesh_topology.load()
    ours = certs.issue_all(tmp_path / "ours", topology)["payment"]
    foreign = certs.CertificateAuthority(tmp_path / "foreign")
    with pytest.raises((InvalidSignature, ValueError)):
        _load(ours.cert).verify_directly_issued_by(_load(foreign.cert_path))
