-- The waitlist of a full class session: when a seat frees up, the first waiting customer is
-- offered it until `offered_until` (the seat is held for them meanwhile: class_sessions.held),
-- then the next. Seats booked and held together never exceed the capacity, also under
-- concurrent confirmations. Runs as the tenant's owner role.
ALTER TABLE class_sessions ADD COLUMN held integer NOT NULL DEFAULT 0;
ALTER TABLE class_sessions DROP CONSTRAINT class_sessions_seats;
ALTER TABLE class_sessions ADD CONSTRAINT class_sessions_seats
    CHECK (booked >= 0 AND held >= 0 AND booked + held <= capacity);

CREATE TABLE class_waitlist (
    id            bigserial PRIMARY KEY,
    session_id    bigint NOT NULL REFERENCES class_sessions (id) ON DELETE CASCADE,
    customer_id   bigint NOT NULL REFERENCES customers (telegram_id),
    customer_name text NOT NULL DEFAULT '',
    phone         text NOT NULL,
    status        text NOT NULL DEFAULT 'waiting'
                  CHECK (status IN ('waiting', 'offered', 'booked', 'expired', 'left')),
    offered_until timestamptz,
    notified_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'offered' OR offered_until IS NOT NULL)
);
-- One place in the line per customer and session.
CREATE UNIQUE INDEX class_waitlist_one_idx ON class_waitlist (session_id, customer_id)
    WHERE status IN ('waiting', 'offered');
CREATE INDEX class_waitlist_queue_idx ON class_waitlist (session_id, id) WHERE status = 'waiting';
CREATE INDEX class_waitlist_offers_idx ON class_waitlist (offered_until) WHERE status = 'offered';
