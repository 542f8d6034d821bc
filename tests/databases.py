"""Each test's own databases, cloned from migrated templates on one PostgreSQL per session.

Making a database from a template is a file copy inside the server (tens of
milliseconds), far cheaper than running every migration per test, and each
test starts from exactly the schema a fresh service would create.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping

import psycopg

from services.catalog.store import MIGRATIONS as CATALOG
from services.inventory.store import MIGRATIONS as INVENTORY
from services.order.store import MIGRATIONS as ORDER
from services.payment.gateway import MIGRATIONS as PAYMENT_GATEWAY
from services.payment.store import MIGRATIONS as PAYMENT
from services.runtime.migrations import Migrations
from shopmesh.local.postgres import DATABASES, LocalPostgres

__all__ = ["MIGRATIONS", "TestDatabases", "make_templates", "template_name"]

# Database (= role) name -> its migrations, for every database of DATABASES.
MIGRATIONS: dict[str, Migrations] = {
    "catalog": CATALOG,
    "inventory": INVENTORY,
    "order": ORDER,
    "payment": PAYMENT,
    "payment_gateway": PAYMENT_GATEWAY,
}
_numbers = itertools.count(1)


def template_name(role: str) -> str:
    return f"template_{role}"


async def _migrate(url: str, migrations: Migrations) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await migrations.apply(connection)


def make_templates(postgres: LocalPostgres) -> None:
    """A migrated, otherwise empty template database per role."""
    assert set(MIGRATIONS) == set(DATABASES)
    for role, migrations in MIGRATIONS.items():
        url = postgres.create_database(role, template_name(role))
        asyncio.run(_migrate(url, migrations))
        postgres.mark_template(template_name(role))


class TestDatabases:
    """Fresh databases for one test, made on first use and dropped by `drop_all`."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, postgres: LocalPostgres) -> None:
        self.postgres = postgres
        self.prefix = f"test{next(_numbers)}"
        self._made: dict[str, str] = {}  # role -> database name

    def name(self, role: str) -> str:
        """The test's database of `role`, made from its template on first use."""
        if role not in self._made:
            name = f"{self.prefix}_{role}"
            self.postgres.create_database(role, name, template=template_name(role))
            self._made[role] = name
        return self._made[role]

    def url(self, role: str) -> str:
        return self.postgres.url(role, self.name(role), self.postgres.password(role))

    def admin_url(self, role: str) -> str:
        """The superuser on the test's database of `role` (for checks behind a service's back)."""
        return self.postgres.url("postgres", self.name(role))

    def env(self, service: str) -> Mapping[str, str]:
        roles = [role for role, (owner, _) in DATABASES.items() if owner == service]
        return self.postgres.env(service, {role: self.name(role) for role in roles})

    def drop_all(self) -> None:
        for name in self._made.values():
            self.postgres.drop_database(name)
        self._made.clear()
