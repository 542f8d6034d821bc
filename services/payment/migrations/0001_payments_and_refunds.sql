-- Payments (one per charge request) and their refunds. Amounts are nanos of the
-- payment's currency. A refund first holds its amount (pending_nanos), so
-- refunded + pending never exceeds the capture, whatever runs concurrently.
CREATE TABLE payments (
    id text PRIMARY KEY,
    request_id text NOT NULL UNIQUE,
    fingerprint text NOT NULL,
    order_id text NOT NULL,
    currency text NOT NULL,
    amount_nanos bigint NOT NULL CHECK (amount_nanos > 0),
    refunded_nanos bigint NOT NULL DEFAULT 0,
    pending_nanos bigint NOT NULL DEFAULT 0,
    status smallint NOT NULL,  -- shop.payment.v1.PaymentStatus
    decline_reason smallint NOT NULL DEFAULT 0,
    method_kind text NOT NULL,
    method_brand text NOT NULL,
    last4 text NOT NULL,  -- never a token or a card number
    gateway_reference text NOT NULL,
    create_us bigint NOT NULL,
    CHECK (refunded_nanos >= 0 AND pending_nanos >= 0),
    CHECK (refunded_nanos + pending_nanos <= amount_nanos)
);

CREATE INDEX payments_by_order ON payments (order_id);

CREATE TABLE refunds (
    id text PRIMARY KEY,
    request_id text NOT NULL UNIQUE,
    fingerprint text NOT NULL,
    payment_id text NOT NULL REFERENCES payments (id),
    amount_nanos bigint NOT NULL CHECK (amount_nanos > 0),
    reason text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'done')),
    create_us bigint NOT NULL
);

CREATE INDEX refunds_by_payment ON refunds (payment_id, create_us);
