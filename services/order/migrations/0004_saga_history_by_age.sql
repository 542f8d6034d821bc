-- The saga journal is pruned past the retention window (services/runtime/retention.py),
-- oldest first.
CREATE INDEX saga_history_by_age ON saga_history (at);
