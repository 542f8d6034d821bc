-- The payment database of the last SQLite release, as its service created it (the
-- import tests build SQLite files with it; shopmesh/sqlite_import.py reads them).
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    order_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_nanos INTEGER NOT NULL CHECK (amount_nanos > 0),
    refunded_nanos INTEGER NOT NULL DEFAULT 0,
    pending_nanos INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL,
    decline_reason INTEGER NOT NULL DEFAULT 0,
    method_kind TEXT NOT NULL,
    method_brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    gateway_reference TEXT NOT NULL,
    create_us INTEGER NOT NULL,
    CHECK (refunded_nanos >= 0 AND pending_nanos >= 0),
    CHECK (refunded_nanos + pending_nanos <= amount_nanos)
);
CREATE INDEX IF NOT EXISTS payments_by_order ON payments (order_id);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    amount_nanos INTEGER NOT NULL CHECK (amount_nanos > 0),
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    create_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_by_payment ON refunds (payment_id, create_us);
