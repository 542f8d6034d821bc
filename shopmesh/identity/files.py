"""Writing identity material: whole files at once, private keys readable by their owner only."""

from __future__ import annotations

import os
import pathlib

__all__ = ["write_atomically"]


def write_atomically(path: pathlib.Path, data: bytes, private: bool = False) -> None:
    """Replaces `path` in one step, so a reader (a proxy loading a certificate or a
    JWKS) never sees half a file; `private` files are mode 0600 before they exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_bytes(data)
    if private:
        scratch.chmod(0o600)
    os.replace(scratch, path)
