-- The simulated gateway's own ledger: every operation under its idempotency key.
CREATE TABLE gateway_operations (
    idempotency_key text PRIMARY KEY,
    fingerprint text NOT NULL,  -- sha256 of the call; never the token itself
    result jsonb NOT NULL,      -- GatewayResult
    create_us bigint NOT NULL
);
