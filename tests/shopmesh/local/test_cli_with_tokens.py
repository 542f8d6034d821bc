"""`shopmesh token` and `shopmesh checkout` as README shows them, against the mesh's edge."""

from __future__ import annotations

import json

import jwt

from shopmesh import cli

from .meshclient import rest

CHECKOUT = [
    "checkout",
    "--item",
    "kitchen-espresso-cup=2",
    "--card",
    "tok_visa",
    "--recipient",
    "Ada Lovelace",
    "--address-line",
    "1 Main St",
]


def _token(mesh, capsys, *args: str) -> str:
    assert cli.main(["token", "--run-dir", str(mesh.layout.root), *args]) == 0
    return capsys.readouterr().out.strip()


def test_token_prints_a_jwt_the_edge_accepts(mesh, capsys):
    token = _token(mesh, capsys, "--customer", "cli-ada", "--scope", "shop.ops", "--ttl", "10m")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["scope"], claims["exp"] - claims["iat"]) == (
        "cli-ada",
        "shop.ops",
        600,
    )
    assert jwt.get_unverified_header(token)["kid"] == mesh.tokens.keys.kids()[-1]
    listed = rest(mesh, "GET", "/v1/orders", headers={"authorization": f"Bearer {token}"})
    assert listed.status == 200, listed.body


def test_token_without_a_mesh_says_so(tmp_path, capsys):
    assert cli.main(["token", "--customer", "ada", "--run-dir", str(tmp_path)]) == 1
    assert "make up" in capsys.readouterr().err


def test_checkout_command_places_the_tokens_customers_order(mesh, capsys):
    token = _token(mesh, capsys, "--customer", "cli-shopper")
    target = ["--target", mesh.edge_address, "--token", token]
    assert cli.main([*CHECKOUT, *target]) == 0
    out = capsys.readouterr().out
    assert "CONFIRMED" in out
    assert "2 x Espresso Cup Set (kitchen-espresso-cup)  at 24.90 USD = 49.80 USD" in out

    declined = [*CHECKOUT, *target, "--json"]
    declined[declined.index("tok_visa")] = "tok_decline_expired"
    assert cli.main(declined) == 1
    order = json.loads(capsys.readouterr().out)
    assert (order["status"], order["failureReason"]) == ("ORDER_STATUS_FAILED", "PAYMENT_DECLINED")
    assert order["customerId"] == "cli-shopper"


def test_checkout_command_needs_a_token(mesh, capsys, monkeypatch):
    monkeypatch.delenv("SHOPMESH_TOKEN", raising=False)
    assert cli.main([*CHECKOUT, "--target", mesh.edge_address]) == 2
    assert "shopmesh token --customer" in capsys.readouterr().err
    # And a customer other than the token's is refused by the order service.
    token = _token(mesh, capsys, "--customer", "cli-ada")
    refused = [*CHECKOUT, "--target", mesh.edge_address, "--token", token, "--customer", "bob"]
    assert cli.main(refused) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
