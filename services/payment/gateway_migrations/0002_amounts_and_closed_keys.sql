-- What each operation moved, so the ledger alone says where money went (the
-- chaos checks compare it with the orders), and what a charge was for (a real
-- gateway keeps the merchant's metadata with it): payment rebuilds its record
-- of a capture whose answer it never got from this, with no card token.
-- kind 'closed' is a closed idempotency key: no operation will ever run under it.
ALTER TABLE gateway_operations
    ADD COLUMN kind text NOT NULL DEFAULT 'charge'
        CHECK (kind IN ('charge', 'refund', 'closed')),
    ADD COLUMN amount_nanos bigint NOT NULL DEFAULT 0,
    ADD COLUMN currency text NOT NULL DEFAULT '',
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';

UPDATE gateway_operations SET kind = 'refund' WHERE idempotency_key LIKE 'refund:%';
