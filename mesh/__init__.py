"""shopmesh's mesh layer: contracts-driven policy, resilient channels, server plumbing.

channel = mesh.connect("inventory")          # or: await-able twin mesh.aio_connect
stub = mesh.contracts.service("inventory").stub(channel)
"""

from mesh.channel import aio_connect, connect
from mesh.interceptors._calls import never_sent

__all__ = ["aio_connect", "connect", "never_sent"]
