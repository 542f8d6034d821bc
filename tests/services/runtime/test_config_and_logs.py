"""Config comes from SHOPMESH_* variables; logs are one JSON object per line."""

import io
import json
import logging

import pytest

from services.runtime.config import ServerConfig
from services.runtime.logs import configure_logging


def test_defaults_match_the_conventions():
    config = ServerConfig.from_env("catalog", {})
    assert config.listen == "0.0.0.0:50051"
    assert config.metrics_listen == "0.0.0.0:9464"
    assert config.drain_seconds == 10
    # No URL: libpq's own PG* variables (PGHOST, PGDATABASE, ...) say where the database is.
    assert config.database_url == ""


def test_environment_overrides_and_empty_metrics_listen_disables():
    config = ServerConfig.from_env(
        "payment",
        {
            "SHOPMESH_LISTEN": "127.0.0.1:7000",
            "SHOPMESH_DATABASE_URL": "postgresql://payment:s3cret@db.internal/payment",
            "SHOPMESH_METRICS_LISTEN": "",
            "SHOPMESH_DRAIN_SECONDS": "2.5",
            "SHOPMESH_LOG_LEVEL": "debug",
        },
    )
    assert (config.listen, config.metrics_listen, config.drain_seconds) == (
        "127.0.0.1:7000",
        "",
        2.5,
    )
    assert config.database_url == "postgresql://payment:s3cret@db.internal/payment"
    assert config.log_level == "DEBUG"


def test_the_database_url_never_shows_in_the_configs_repr():
    # Its password must not reach a log line that prints the config.
    config = ServerConfig.from_env(
        "payment", {"SHOPMESH_DATABASE_URL": "postgresql://p:s3cret@h/p"}
    )
    assert "s3cret" not in repr(config)


def test_bad_drain_seconds_is_refused():
    with pytest.raises(ValueError, match="SHOPMESH_DRAIN_SECONDS"):
        ServerConfig.from_env("catalog", {"SHOPMESH_DRAIN_SECONDS": "soon"})


def test_logs_are_json_lines_with_service_and_extra():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("inventory", "INFO", stream)
        logging.getLogger("shopmesh.test").info("reserved %d", 3, extra={"order_id": "o-1"})
        logging.getLogger("shopmesh.test").debug("hidden")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["service"] == "inventory" and entry["level"] == "INFO"
    assert entry["message"] == "reserved 3" and entry["extra"] == {"order_id": "o-1"}
    assert entry["time"].endswith("+00:00") and entry["trace_id"] is None
