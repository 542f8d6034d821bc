"""The catalog's storage: products and categories in PostgreSQL, seeded on first start.

Handlers never see SQL: they get an in-memory `Catalog` (index.py) the store
builds once at start. The catalog does not change while a server runs, so
this cache is correct across replicas.
"""

from __future__ import annotations

from services.catalog.index import Catalog, ProductRecord
from services.runtime import Database, DatabaseStore, ServerConfig
from services.runtime.migrations import Migrations
from services.runtime.postgres import Connection
from services.seed import SEED_CATEGORIES, SEED_PRODUCTS

__all__ = ["CatalogStore"]

MIGRATIONS = Migrations.of_package("services.catalog")


async def _seed_if_empty(connection: Connection) -> None:
    if await (await connection.execute("SELECT 1 FROM products LIMIT 1")).fetchone():
        return
    async with connection.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO categories (id, display_name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            list(SEED_CATEGORIES.items()),
        )
        await cursor.executemany(
            "INSERT INTO products VALUES (%s, %s, %s, %s, %s, %s, 'USD', %s)"
            " ON CONFLICT DO NOTHING",
            [
                (p.id, p.sku, p.name, p.description, p.category, list(p.image_urls), p.price_nanos)
                for p in SEED_PRODUCTS
            ],
        )


async def _load(connection: Connection) -> tuple[list[ProductRecord], dict[str, str]]:
    cursor = await connection.execute("SELECT id, display_name FROM categories ORDER BY id")
    categories = dict(await cursor.fetchall())
    cursor = await connection.execute(
        "SELECT id, sku, name, description, category, image_urls, price_currency, price_nanos"
        " FROM products ORDER BY id"
    )
    products = [
        ProductRecord(
            id=id_,
            sku=sku,
            name=name,
            description=description,
            category=category,
            image_urls=tuple(image_urls),
            currency=currency,
            price_nanos=price_nanos,
        )
        for id_, sku, name, description, category, image_urls, currency, price_nanos in (
            await cursor.fetchall()
        )
    ]
    return products, categories


class CatalogStore(DatabaseStore):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.catalog = Catalog([], {})

    @classmethod
    async def open(cls, config: ServerConfig) -> CatalogStore:
        database = await Database.open(config.database_url, MIGRATIONS, name="catalog")
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
