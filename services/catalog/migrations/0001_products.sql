-- The catalog: categories and products. Prices are nanos of their currency (no floats).
CREATE TABLE categories (
    id text PRIMARY KEY,
    display_name text NOT NULL
);

CREATE TABLE products (
    id text PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    description text NOT NULL,
    category text NOT NULL REFERENCES categories (id),
    image_urls text[] NOT NULL,  -- main picture first
    price_currency text NOT NULL,
    price_nanos bigint NOT NULL CHECK (price_nanos >= 0)
);

CREATE INDEX products_by_category ON products (category, id);
