-- A fencing token per saga: every claim of a saga in flight (by a new checkout, by
-- recovery, by a cancellation) takes the next number, and an owner's writes name
-- the number it claimed with. A process that lost its lease (it stalled past it,
-- another replica took over) is refused even if it still thinks it owns the saga.
ALTER TABLE orders ADD COLUMN lease_token bigint NOT NULL DEFAULT 0;
