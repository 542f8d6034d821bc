"""The catalog service: products, categories, prices (seeded from seed.py on first start)."""

from services.catalog.servicer import CatalogServicer
from services.catalog.store import CatalogStore
from services.runtime import Service

__all__ = ["SERVICE"]

SERVICE = Service(name="catalog", open_store=CatalogStore.open, make_servicer=CatalogServicer)
