"""The catalog's storage: products and categories in SQLite, seeded on first start.

Handlers never see SQL: they get an in-memory `Catalog` (index.py) the store
builds once at start. The catalog does not change while a server runs, so
this cache is correct across replicas; a PostgreSQL store would only need to
provide the same `open`/`load`/`probe`/`close`.
"""

from __future__ import annotations

import json
import sqlite3

from services.catalog.index import Catalog, ProductRecord
from services.runtime import Database, DatabaseStore, ServerConfig
from services.seed import SEED_CATEGORIES, SEED_PRODUCTS

__all__ = ["CatalogStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS categories (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL REFERENCES categories (id),
    image_urls TEXT NOT NULL,          -- JSON array, main picture first
    price_currency TEXT NOT NULL,
    price_nanos INTEGER NOT NULL       -- price in nanos of the currency: no floats
);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category, id)
"""


def _seed_if_empty(connection: sqlite3.Connection) -> None:
    if connection.execute("SELECT 1 FROM products LIMIT 1").fetchone():
        return
    connection.executemany(
        "INSERT OR IGNORE INTO categories (id, display_name) VALUES (?, ?)",
        SEED_CATEGORIES.items(),
    )
    connection.executemany(
        "INSERT OR IGNORE INTO products VALUES (?, ?, ?, ?, ?, ?, 'USD', ?)",
        [
            (
                p.id,
                p.sku,
                p.name,
                p.description,
                p.category,
                json.dumps(p.image_urls),
                p.price_nanos,
            )
            for p in SEED_PRODUCTS
        ],
    )


def _load(connection: sqlite3.Connection) -> tuple[list[ProductRecord], dict[str, str]]:
    categories = dict(connection.execute("SELECT id, display_name FROM categories ORDER BY id"))
    products = [
        ProductRecord(
            id=row["id"],
            sku=row["sku"],
            name=row["name"],
            description=row["description"],
            category=row["category"],
            image_urls=tuple(json.loads(row["image_urls"])),
            currency=row["price_currency"],
            price_nanos=row["price_nanos"],
        )
        for row in connection.execute("SELECT * FROM products ORDER BY id")
    ]
    return products, categories


class CatalogStore(DatabaseStore):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.catalog = Catalog([], {})

    @classmethod
    async def open(cls, config: ServerConfig) -> CatalogStore:
        database = await Database.open(config.database_path(), SCHEMA)
        store = cls(database)
        try:
            await database.write(_seed_if_empty)
            await store.load()
        except BaseException:
            await database.close()
            raise
        return store

    async def load(self) -> Catalog:
        """Read the whole catalog into memory (it is small and read-mostly)."""
        products, categories = await self.database.read(_load)
        self.catalog = Catalog(products, categories)
        return self.catalog
