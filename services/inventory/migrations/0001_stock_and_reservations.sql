-- Stock per SKU and reservations. Per SKU: on_hand = available + reserved and
-- 0 <= reserved <= on_hand, enforced here so that even a bug cannot oversell.
CREATE TABLE stock (
    sku text PRIMARY KEY,
    on_hand integer NOT NULL,
    reserved integer NOT NULL DEFAULT 0,
    sold integer NOT NULL DEFAULT 0,
    CHECK (reserved >= 0 AND reserved <= on_hand AND sold >= 0)
);

-- state: shop.inventory.v1.ReservationState (1 ACTIVE, 2 COMMITTED, 3 RELEASED, 4 EXPIRED)
CREATE TABLE reservations (
    id text PRIMARY KEY,
    order_id text NOT NULL UNIQUE,  -- one reservation per order
    state smallint NOT NULL CHECK (state BETWEEN 1 AND 4),
    create_us bigint NOT NULL,
    expire_us bigint NOT NULL
);

CREATE INDEX reservations_due ON reservations (expire_us) WHERE state = 1;

CREATE TABLE reservation_items (
    reservation_id text NOT NULL REFERENCES reservations (id),
    position integer NOT NULL,
    sku text NOT NULL REFERENCES stock (sku),
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, position)
);

-- Every mutating request_id: a repeat answers from its target, the same id on a
-- different request is refused.
CREATE TABLE requests (
    request_id text PRIMARY KEY,
    method text NOT NULL,
    fingerprint text NOT NULL,
    target text NOT NULL
);
