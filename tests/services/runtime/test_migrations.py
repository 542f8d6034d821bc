"""Schema migrations on a real PostgreSQL: every service's apply from nothing, once; an edited
file is refused; replicas starting together take turns; a failing file changes nothing."""

import asyncio

import psycopg
import pytest

from services.runtime.migrations import Migration, Migrations
from services.runtime.testing import serving
from tests.databases import MIGRATIONS

from ..rows import query

# The service's schema as PostgreSQL describes it: every column of every table, and indexes.
SCHEMA = (
    "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable"
    " FROM information_schema.columns WHERE table_schema = 'public'"
    " UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
    " UNION ALL SELECT conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace ORDER BY 1"
)
APPLIED = "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"


@pytest.fixture
def empty_database(databases):
    """`make(role)`: a new database owned by `role` with no tables at all (not a clone of
    the migrated template); its URL as the role, and as the superuser."""
    postgres, made = databases.postgres, []

    def make(role: str) -> tuple[str, str]:
        name = f"{databases.prefix}_empty_{role}"
        made.append(name)
        return postgres.create_database(role, name), postgres.url("postgres", name)

    yield make
    for name in made:
        postgres.drop_database(name)


async def _apply(url: str, migrations: Migrations) -> list[str]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        return await migrations.apply(connection)


@pytest.mark.parametrize("role", sorted(MIGRATIONS))
async def test_every_migration_applies_to_an_empty_database_and_a_second_apply_does_nothing(
    empty_database, role
):
    migrations = MIGRATIONS[role]
    url, admin_url = empty_database(role)
    assert query(admin_url, SCHEMA) == []
    # As the service's own role (what a service does at start), not as the superuser.
    assert await _apply(url, migrations) == [m.name for m in migrations.items]
    schema, applied = query(admin_url, SCHEMA), query(admin_url, APPLIED)
    assert len(schema) > 1  # more than schema_migrations' bookkeeping
    assert [(v, n, c) for v, n, c, _ in applied] == [
        (m.version, m.name, m.checksum) for m in migrations.items
    ]

    assert await _apply(url, migrations) == []
    assert (query(admin_url, SCHEMA), query(admin_url, APPLIED)) == (schema, applied)


async def test_an_applied_migration_whose_text_changed_is_refused(empty_database):
    migrations = MIGRATIONS["inventory"]
    url, admin_url = empty_database("inventory")
    await _apply(url, migrations)
    schema, applied = query(admin_url, SCHEMA), query(admin_url, APPLIED)
    first = migrations.items[0]
    edited = Migrations((Migration(first.version, first.name, first.sql + "\n-- tidied"),))
    with pytest.raises(RuntimeError, match=f"{first.name} was edited after it was applied"):
        await _apply(url, edited)
    assert (query(admin_url, SCHEMA), query(admin_url, APPLIED)) == (schema, applied)


async def test_a_service_whose_database_ran_other_migration_text_refuses_to_start(databases):
    query(databases.admin_url("catalog"), "UPDATE schema_migrations SET checksum = 'other'")
    with pytest.raises(RuntimeError, match="edited after it was applied"):
        async with serving("catalog", databases):
            pass


async def test_replicas_starting_together_apply_each_migration_once(empty_database):
    migrations = MIGRATIONS["order"]
    url, admin_url = empty_database("order")
    results = await asyncio.gather(*(_apply(url, migrations) for _ in range(4)))
    assert sorted(results, key=len) == [[], [], [], [m.name for m in migrations.items]]
    assert [row[0] for row in query(admin_url, APPLIED)] == [m.version for m in migrations.items]


async def test_a_failing_migration_leaves_the_schema_as_it_was(empty_database):
    url, admin_url = empty_database("catalog")
    good = Migration(1, "0001_things.sql", "CREATE TABLE things (id text PRIMARY KEY)")
    await _apply(url, Migrations((good,)))
    schema, applied = query(admin_url, SCHEMA), query(admin_url, APPLIED)
    broken = Migration(
        2,
        "0002_more.sql",
        "CREATE TABLE more_things (id text PRIMARY KEY);"
        " ALTER TABLE things ADD COLUMN size integer NOT NULL DEFAULT 0;"
        " INSERT INTO no_such_table VALUES (1)",
    )
    with pytest.raises(psycopg.errors.UndefinedTable):
        await _apply(url, Migrations((good, broken)))
    assert (query(admin_url, SCHEMA), query(admin_url, APPLIED)) == (schema, applied)
    # Nothing is left locked: the corrected file applies.
    fixed = Migration(2, "0002_more.sql", "CREATE TABLE more_things (id text PRIMARY KEY)")
    assert await _apply(url, Migrations((good, fixed))) == ["0002_more.sql"]
