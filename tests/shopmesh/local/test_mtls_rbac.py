"""Sidecars let in only mesh workloads (mTLS), and only to the RPCs each may call (RBAC)."""

import socket
import ssl

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import contracts
from shopmesh.identity import certs

from .meshclient import as_workload

pytestmark = pytest.mark.timeout(180)


def _get_payment(channel: grpc.Channel) -> grpc.StatusCode:
    payment = contracts.service("payment")
    try:
        payment.stub(channel).GetPayment(payment.messages.GetPaymentRequest(id="pay_x"), timeout=5)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_plaintext_grpc_to_a_sidecar_fails(mesh):
    with grpc.insecure_channel(mesh.replica("payment", 0).inbound_address) as channel:
        assert _get_payment(channel) == grpc.StatusCode.UNAVAILABLE


def test_plaintext_http_to_a_sidecar_gets_no_http_answer(mesh):
    host, port = mesh.replica("catalog", 0).inbound_address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"GET /v1/products HTTP/1.1\r\nHost: catalog\r\n\r\n")
        try:
            answer = connection.recv(64)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")


def test_tls_without_a_client_certificate_is_refused(mesh):
    host, port = mesh.replica("catalog", 0).inbound_address.split(":")
    context = ssl.create_default_context(cafile=str(mesh.layout.ca))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
        context.wrap_socket(raw, server_hostname="catalog") as tls,
    ):
        # TLS 1.3 finishes the client's side of the handshake before the server
        # has checked the (missing) certificate: the refusal arrives on read.
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        if not tls.recv(64):
            raise ConnectionResetError("closed without an answer")


def test_a_certificate_from_another_ca_is_refused(mesh, tmp_path):
    impostor = certs.CertificateAuthority(tmp_path).issue(
        "order", mesh.topology.spiffe_id("order"), dns_names=["order"]
    )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=mesh.layout.ca.read_bytes(),
        private_key=impostor.key.read_bytes(),
        certificate_chain=impostor.cert.read_bytes(),
    )
    address = mesh.replica("payment", 0).inbound_address
    options = [("grpc.ssl_target_name_override", "payment")]
    with grpc.secure_channel(address, credentials, options) as channel:
        assert _get_payment(channel) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        # order and ops may read payments: the call reaches the app (no such payment).
        ("order", grpc.StatusCode.NOT_FOUND),
        ("ops", grpc.StatusCode.NOT_FOUND),
        # A valid mesh certificate of a workload topology.yaml does not allow.
        ("catalog", grpc.StatusCode.PERMISSION_DENIED),
        ("edge", grpc.StatusCode.PERMISSION_DENIED),
        ("storefront-node", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_payment_answers_only_the_callers_topology_allows(mesh, caller, expected):
    with as_workload(mesh, caller, mesh.replica("payment", 1)) as channel:
        assert _get_payment(channel) == expected


def test_rbac_is_per_method_not_per_service(mesh):
    """ops may read payments but not charge one."""
    payment = contracts.service("payment")
    charge = payment.messages.ChargeRequest()
    with (
        as_workload(mesh, "ops", mesh.replica("payment", 0)) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        payment.stub(channel).Charge(charge, timeout=5)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_every_mesh_identity_may_check_health(mesh):
    service = contracts.service("payment").full_name
    with as_workload(mesh, "catalog", mesh.replica("payment", 0)) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING
