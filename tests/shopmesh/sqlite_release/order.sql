-- The order database of the last SQLite release, as its service created it (the
-- import tests build SQLite files with it; shopmesh/sqlite_import.py reads them).
CREATE TABLE IF NOT EXISTS orders (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    request_id      TEXT NOT NULL UNIQUE,
    fingerprint     TEXT NOT NULL,
    status          INTEGER NOT NULL,       -- shop.order.v1.OrderStatus
    step            TEXT,                   -- services.order.model.Step, NULL when idle
    create_time     INTEGER NOT NULL,       -- ns since the epoch
    order_pb        BLOB NOT NULL,          -- shop.order.v1.Order
    request_pb      BLOB NOT NULL,          -- shop.order.v1.PlaceOrderRequest
    failure_reason  TEXT NOT NULL DEFAULT '',
    failure_message TEXT NOT NULL DEFAULT '',
    cancel_reason   TEXT NOT NULL DEFAULT '',
    refund_due      INTEGER NOT NULL DEFAULT 0,
    owner           TEXT,
    lease_expires   REAL                    -- epoch seconds
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, create_time, id);
CREATE INDEX IF NOT EXISTS orders_in_flight ON orders (lease_expires) WHERE step IS NOT NULL;
CREATE TABLE IF NOT EXISTS saga_history (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    owner    TEXT NOT NULL,
    event    TEXT NOT NULL,
    at       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_history_by_order ON saga_history (order_id, seq);
