-- The payment_gateway database of the last SQLite release, as its service created it (the
-- import tests build SQLite files with it; shopmesh/sqlite_import.py reads them).
CREATE TABLE IF NOT EXISTS gateway_operations (
    idempotency_key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,   -- sha256 of the call; never the token itself
    result TEXT NOT NULL,        -- JSON of GatewayResult
    create_us INTEGER NOT NULL
);
