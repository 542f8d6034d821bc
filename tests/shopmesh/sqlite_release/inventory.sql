-- The inventory database of the last SQLite release, as its service created it (the
-- import tests build SQLite files with it; shopmesh/sqlite_import.py reads them).
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY,
    on_hand INTEGER NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0,
    sold INTEGER NOT NULL DEFAULT 0,
    CHECK (reserved >= 0 AND reserved <= on_hand AND on_hand <= 2147483647 AND sold >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    state INTEGER NOT NULL,
    create_us INTEGER NOT NULL,
    expire_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_due ON reservations (state, expire_us);
CREATE TABLE IF NOT EXISTS reservation_items (
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    position INTEGER NOT NULL,
    sku TEXT NOT NULL REFERENCES stock (sku),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, position)
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    target TEXT NOT NULL
);
