-- When each request_id was first seen, so keys past the retention window can be
-- deleted (services/runtime/retention.py). Keys from before this migration count
-- as seen now: they expire one window after it.
ALTER TABLE requests ADD COLUMN created_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX requests_by_age ON requests (created_at);
