"""Every service commits durably: a transaction a service was told is committed is on disk
(a host crash cannot roll it back). Inventory once committed with a weaker setting than
order and payment, so a crash could undo a stock change while its order stayed CONFIRMED.

What a service controls is its sessions' `synchronous_commit` (and whether its role or
database carries an override); `fsync` is the server's, set by whoever runs it (the test
server of this suite turns it off for speed, see tests/conftest.py; `make up`'s and
CloudNativePG's keep it on).
"""

from __future__ import annotations

import pytest

from services.runtime.postgres import Database, fetch_one
from tests.databases import MIGRATIONS

from ..rows import query


@pytest.mark.parametrize("role", sorted(MIGRATIONS))
async def test_each_services_sessions_commit_durably(databases, role):
    database = await Database.open(databases.url(role), MIGRATIONS[role], name=role)
    try:
        (value,) = await database.write(fetch_one, "SHOW synchronous_commit")
        assert value == "on", role
        (value,) = await database.read(fetch_one, "SHOW synchronous_commit")
        assert value == "on", role
    finally:
        await database.close()
    overrides = query(
        databases.admin_url(role),
        "SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
        " WHERE r.rolname = %s",
        (role,),
    )
    assert overrides == [], f"{role} has its own settings: {overrides}"
