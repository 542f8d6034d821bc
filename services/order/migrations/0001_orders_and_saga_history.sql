-- Orders with their saga state, and the saga's journal.
CREATE TABLE orders (
    id text PRIMARY KEY,
    customer_id text NOT NULL,
    request_id text NOT NULL UNIQUE,
    fingerprint text NOT NULL,
    status smallint NOT NULL,     -- shop.order.v1.OrderStatus
    step text,                    -- services.order.model.Step, NULL when idle
    create_time bigint NOT NULL,  -- ns since the epoch
    order_pb bytea NOT NULL,      -- shop.order.v1.Order
    request_pb bytea NOT NULL,    -- shop.order.v1.PlaceOrderRequest
    failure_reason text NOT NULL DEFAULT '',
    failure_message text NOT NULL DEFAULT '',
    cancel_reason text NOT NULL DEFAULT '',
    refund_due boolean NOT NULL DEFAULT false,
    owner text,                   -- the process running the saga
    lease_expires timestamptz     -- by the database's clock
);

CREATE INDEX orders_by_customer ON orders (customer_id, create_time, id);
CREATE INDEX orders_in_flight ON orders (lease_expires) WHERE step IS NOT NULL;

CREATE TABLE saga_history (
    seq bigserial PRIMARY KEY,
    order_id text NOT NULL,
    owner text NOT NULL,
    event text NOT NULL,  -- a Step, "CLAIM", "CANCEL", or a final status name
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX saga_history_by_order ON saga_history (order_id, seq);
