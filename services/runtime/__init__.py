"""The server runtime every shopmesh service runs on (see server.py for the life cycle)."""

from services.runtime.config import ServerConfig
from services.runtime.postgres import Database, DatabaseStore, StoreUnavailable
from services.runtime.server import Server, create_server, serve
from services.runtime.service import Service, Store, lookup

__all__ = [
    "Database",
    "DatabaseStore",
    "Server",
    "ServerConfig",
    "Service",
    "Store",
    "StoreUnavailable",
    "create_server",
    "lookup",
    "serve",
]
