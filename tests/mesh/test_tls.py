"""Proxyless mTLS: a channel with TLS files from the mesh config speaks mutual TLS directly."""

import grpc
import pytest

import mesh
from mesh import config as mesh_config
from shopmesh import topology
from shopmesh.identity.certs import CertificateAuthority, issue_all

from .scripted_server import Script, _Catalog, catalog

REQUEST = catalog.messages.GetProductRequest(id="p-1")


@pytest.fixture
async def tls_server(tmp_path):
    certs = issue_all(tmp_path / "pki", topology.load())
    ca = (tmp_path / "pki" / "ca.pem").read_bytes()
    own = certs["catalog"]
    credentials = grpc.ssl_server_credentials(
        [(own.key.read_bytes(), own.cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=True,
    )
    script = Script()
    server = grpc.aio.server()
    catalog.add_to_server(_Catalog(script), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    yield f"127.0.0.1:{port}", certs, script
    await server.stop(None)


def _config(address, ca, cert, key, name):
    tls = mesh_config.TlsFiles(ca=ca, cert=cert, key=key, server_name="catalog")
    return mesh_config.MeshConfig(upstreams={name: mesh_config.Upstream(name, address, tls)})


async def test_mutual_tls_with_the_mesh_ca_works(tls_server, tmp_path, upstream_name):
    address, certs, script = tls_server
    order = certs["order"]
    cfg = _config(address, tmp_path / "pki" / "ca.pem", order.cert, order.key, upstream_name)
    async with mesh.aio_connect(upstream_name, config=cfg) as channel:
        response = await catalog.stub(channel).GetProduct(REQUEST)
    assert response.product.id == "p-1"
    assert script.calls == 1


async def test_a_client_certificate_from_another_ca_is_refused(tls_server, tmp_path, upstream_name):
    address, _, script = tls_server
    stranger = CertificateAuthority(tmp_path / "other-ca").issue(
        "order", "spiffe://cluster.local/ns/shop/sa/order"
    )
    cfg = _config(address, tmp_path / "pki" / "ca.pem", stranger.cert, stranger.key, upstream_name)
    async with mesh.aio_connect(upstream_name, config=cfg) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await catalog.stub(channel).GetProduct(REQUEST, timeout=2)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert script.calls == 0


async def test_plaintext_to_a_tls_server_fails(tls_server, upstream_name):
    address, _, script = tls_server
    cfg = mesh_config.MeshConfig(
        upstreams={upstream_name: mesh_config.Upstream(upstream_name, address)}
    )
    async with mesh.aio_connect(upstream_name, config=cfg) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await catalog.stub(channel).GetProduct(REQUEST, timeout=2)
    assert script.calls == 0
