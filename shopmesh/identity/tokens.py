"""End users' tokens for the local mesh: a development issuer beside the mesh CA.

The issuer signs JWTs (ES256, PyJWT) with ECDSA P-256 keys kept as
`jwt-<kid>-key.pem` in the certs directory; `jwks.json` beside them holds the
public half of every key there. The edge and the order sidecars verify tokens
against that file (Envoy jwt_authn, local JWKS), so it is the one list of keys
the local mesh trusts. Each key has its own `kid`, which lets keys rotate:

    keys.add_key()        # a new key joins the JWKS and signs from now on: have
                          # the proxies read the JWKS again (LocalMesh.reload_token_keys)
                          # before handing out its tokens
    keys.retire("dev-1")  # the old key leaves the JWKS: once the proxies have read
                          # it again, the old key's tokens stop working

Only public keys ever leave this directory. Kubernetes never sees these: istio/
carries the identity provider's public JWKS (see istio/README.md).
"""

from __future__ import annotations

import json
import pathlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from shopmesh.identity.files import write_atomically
from shopmesh.topology import EndUsers

__all__ = ["ALGORITHM", "DEFAULT_TTL", "SigningKeys", "TokenIssuer"]

ALGORITHM = "ES256"
DEFAULT_TTL = 3600.0  # seconds a token is valid
_KEY_FILE = re.compile(r"^jwt-(dev-(\d+))-key\.pem$")


class SigningKeys:
    """The issuer's keys in `directory` and the JWKS made of their public halves."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.jwks_path = directory / "jwks.json"

    @classmethod
    def ensure(cls, directory: pathlib.Path) -> SigningKeys:
        """The keys in `directory`, with a first one created if there is none."""
        keys = cls(directory)
        if not keys.kids():
            keys.add_key()
        else:
            keys.publish()
        return keys

    def _files(self) -> dict[str, tuple[int, pathlib.Path]]:
        found = {}
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                if match := _KEY_FILE.match(path.name):
                    found[match.group(1)] = (int(match.group(2)), path)
        return found

    def kids(self) -> list[str]:
        """Key ids, oldest first; the last one signs."""
        files = self._files()
        return sorted(files, key=lambda kid: files[kid][0])

    def _private(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self._files()[kid][1].read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def add_key(self) -> str:
        """Creates a key, publishes it in the JWKS and returns its kid."""
        number = max((n for n, _ in self._files().values()), default=0) + 1
        kid = f"dev-{number}"
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomically(self.directory / f"jwt-{kid}-key.pem", pem, private=True)
        self.publish()
        return kid

    def retire(self, kid: str) -> None:
        """Deletes a key: it leaves the JWKS, and nothing can sign with it again."""
        files = self._files()
        if kid not in files:
            raise KeyError(f"no signing key {kid!r} in {self.directory}")
        if len(files) == 1:
            raise ValueError("the last signing key cannot be retired: add another first")
        files[kid][1].unlink()
        self.publish()

    def jwks(self) -> dict:
        """The public JWK of every key, each with its kid, alg and use."""
        keys = []
        for kid in self.kids():
            jwk = ECAlgorithm.to_jwk(self._private(kid).public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}

    def publish(self) -> pathlib.Path:
        """(Re)writes jwks.json from the keys present."""
        write_atomically(self.jwks_path, json.dumps(self.jwks(), indent=2).encode() + b"\n")
        return self.jwks_path

    def sign(self, claims: dict, kid: str | None = None) -> str:
        kid = kid or self.kids()[-1]
        return jwt.encode(claims, self._private(kid), algorithm=ALGORITHM, headers={"kid": kid})


@dataclass
class TokenIssuer:
    """Signs end users' tokens: `sub` is the customer (or operator), `scope` their rights."""

    keys: SigningKeys
    end_users: EndUsers
    _cache: dict[tuple[str, tuple[str, ...], str], tuple[float, str]] = field(default_factory=dict)

    def claims(
        self, subject: str, scopes: Iterable[str] = (), ttl: float = DEFAULT_TTL, now=None
    ) -> dict:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.end_users.issuer,
            "aud": self.end_users.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl),
        }
        if scopes := " ".join(scopes):
            claims["scope"] = scopes
        return claims

    def token(
        self,
        subject: str,
        scopes: Iterable[str] = (),
        ttl: float = DEFAULT_TTL,
        kid: str | None = None,
    ) -> str:
        if not subject:
            raise ValueError("a token needs a subject")
        return self.keys.sign(self.claims(subject, scopes, ttl), kid)

    def bearer(self, subject: str, scopes: Iterable[str] = ()) -> str:
        """An `authorization` header value for `subject`, signed with the newest key and
        reused while it has half its life left: load generators ask for one per request."""
        kid = self.keys.kids()[-1]
        key = (subject, tuple(scopes), kid)
        now = time.time()
        renew_at, token = self._cache.get(key, (0.0, ""))
        if now >= renew_at:
            token = self.token(subject, key[1], kid=kid)
            self._cache[key] = (now + DEFAULT_TTL / 2, token)
        return f"Bearer {token}"
