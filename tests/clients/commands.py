"""The commands the clients in other languages need: node, go."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["on_path"]


def on_path(command: str, client: str) -> str:
    """Where `command` is; without it the client's tests skip, except in CI, where they fail."""
    found = shutil.which(command)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{command} is not on PATH; CI must run the {client} client's tests")
    pytest.skip(f"{command} is not on PATH: the {client} client cannot run here")
