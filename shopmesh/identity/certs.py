"""A local certificate authority issuing SPIFFE workload certificates.

Istio's CA gives every workload an X.509 certificate whose URI SAN is its SPIFFE
ID; the local mesh does the same with its own CA so sidecar RBAC matches on the
very identities istio/ AuthorizationPolicies name. Keys are ECDSA P-256: small,
fast to make, and accepted by Envoy's BoringSSL.
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shopmesh.identity.files import write_atomically
from shopmesh.topology import Topology

__all__ = ["CertificateAuthority", "WorkloadCert", "issue_all"]

CA_NAME = "shopmesh local CA"
VALIDITY = datetime.timedelta(days=30)
# Clocks of the processes that check these certs may lag a little behind ours.
BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class WorkloadCert:
    """PEM files of one workload's identity."""

    workload: str
    spiffe_id: str
    cert: pathlib.Path
    key: pathlib.Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertificateAuthority:
    """A self-signed CA kept as ca.pem / ca-key.pem in a directory."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.cert_path = directory / "ca.pem"
        self.key_path = directory / "ca-key.pem"
        if self.cert_path.exists() and self.key_path.exists():
            self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self._key = key
        else:
            self._key, self._cert = self._create()
            write_atomically(self.key_path, _key_pem(self._key), private=True)
            write_atomically(self.cert_path, self._cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _create() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def issue(self, workload: str, spiffe_id: str, dns_names: Iterable[str] = ()) -> WorkloadCert:
        """Writes <workload>.pem and <workload>-key.pem, valid as server and as client.

        A sidecar presents the same certificate when it accepts (server) and when
        it calls out (client), as an Istio workload does.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id)]
        names += [x509.DNSName(name) for name in dns_names]
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, workload)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        result = WorkloadCert(
            workload=workload,
            spiffe_id=spiffe_id,
            cert=self.directory / f"{workload}.pem",
            key=self.directory / f"{workload}-key.pem",
        )
        write_atomically(result.key, _key_pem(key), private=True)
        write_atomically(result.cert, cert.public_bytes(serialization.Encoding.PEM))
        return result


def issue_all(directory: pathlib.Path, topology: Topology) -> dict[str, WorkloadCert]:
    """The CA in `directory` (created on first use) and a fresh cert per workload.

    DNS SANs are the names the workload's Kubernetes Service would have, so a
    client may also verify a sidecar by name (the mesh itself checks SPIFFE IDs).
    """
    ca = CertificateAuthority(directory)
    certs = {}
    for workload in topology.workloads:
        service_dns = f"{workload}.{topology.namespace}.svc"
        certs[workload] = ca.issue(
            workload,
            topology.spiffe_id(workload),
            dns_names=(workload, service_dns, f"{service_dns}.{topology.trust_domain}"),
        )
    return certs
