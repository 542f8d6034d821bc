-- The catalog database of the last SQLite release, as its service created it (the
-- import tests build SQLite files with it; shopmesh/sqlite_import.py reads them).
CREATE TABLE IF NOT EXISTS categories (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL REFERENCES categories (id),
    image_urls TEXT NOT NULL,          -- JSON array, main picture first
    price_currency TEXT NOT NULL,
    price_nanos INTEGER NOT NULL       -- price in nanos of the currency: no floats
);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category, id);
