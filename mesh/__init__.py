"""shopmesh's client library: contracts-driven policy and resilient channels.

channel = mesh.connect("inventory")          # or: await-able twin mesh.aio_connect
stub = mesh.contracts.service("inventory").stub(channel)

Its public names are `__all__` here and in the modules listed in
tests/mesh/test_exported_members.py, which pins them: services and the tooling
link against this package, so a name removed or renamed is a breaking change.
"""

from mesh.channel import aio_connect, connect
from mesh.interceptors._calls import never_sent

__all__ = ["aio_connect", "connect", "never_sent"]
