-- Charges whose outcome a saga could not learn before it gave the order up. Money
-- that may have moved is never only in a log line: the reconciler keeps asking
-- payment (CloseCharge: it settles the charge without charging) and refunds a
-- capture, and operators list what is still open (`shopmesh reconcile`).
CREATE TABLE reconciliations (
    order_id text PRIMARY KEY REFERENCES orders (id),
    charge_request_id text NOT NULL,
    state text NOT NULL DEFAULT 'open'
        CHECK (state IN ('open', 'refunded', 'nothing_owed')),
    payment_id text NOT NULL DEFAULT '',
    attempts integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    opened_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    resolved_at timestamptz
);

CREATE INDEX reconciliations_open ON reconciliations (opened_at) WHERE state = 'open';
