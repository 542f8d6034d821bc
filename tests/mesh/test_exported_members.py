"""The client library's public API, pinned: removing or renaming a name fails here.

Adding a name means adding it to the table below too, on purpose.
"""

import importlib
import types

import pytest

import mesh

PUBLIC_API = {
    "mesh": ["aio_connect", "connect", "never_sent"],
    "mesh.breakers": ["UNHEALTHY_CODES", "breaker_for", "rejecting", "reset_all"],
    "mesh.channel": ["aio_connect", "connect"],
    "mesh.config": ["DEFAULT_PORT", "MeshConfig", "TlsFiles", "Upstream", "load"],
    "mesh.contracts": [
        "Idempotency",
        "MethodPolicy",
        "ServiceContract",
        "method_policy",
        "service",
        "services",
    ],
    "mesh.deadline": ["effective_timeout", "inbound_deadline", "remaining", "serving_until"],
    "mesh.interceptors": [
        "AioBreakerInterceptor",
        "AioDeadlineInterceptor",
        "AioRetryInterceptor",
        "BreakerInterceptor",
        "DeadlineInterceptor",
        "RetryInterceptor",
        "RetryPolicy",
    ],
    "mesh.retry_budget": ["RetryBudget"],
    "mesh.status": ["SERVER_FAULTS"],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_API))
def test_the_public_names_are_exactly_the_pinned_ones(module_name):
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == PUBLIC_API[module_name]
    for name in module.__all__:
        assert getattr(module, name, None) is not None, f"{module_name}.{name} is missing"


def test_the_package_exports_everything_it_defines_at_top_level():
    defined = sorted(
        name
        for name, value in vars(mesh).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )
    assert defined == sorted(mesh.__all__)


def test_every_public_module_is_pinned():
    """A new public module of mesh/ must join the table (private ones start with _)."""
    import pkgutil

    found = {"mesh"} | {
        info.name
        for info in pkgutil.walk_packages(mesh.__path__, prefix="mesh.")
        if not any(part.startswith("_") for part in info.name.split("."))
        and info.name.count(".") == 1
    }
    assert found == set(PUBLIC_API)
