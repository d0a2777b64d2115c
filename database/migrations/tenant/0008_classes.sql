-- Group classes: a service with a capacity is a class. Its sessions come from a weekly timetable
-- (materialised ahead as rows, so every session has its own seat counter) plus one-off sessions.
-- A customer books a seat: a booking row with the session. Seats are counted in the session row
-- and a CHECK keeps the count within the capacity, so concurrent confirmations (each updating
-- the row under its lock) never oversell. Runs as the tenant's owner role.
ALTER TABLE services ADD COLUMN capacity integer CHECK (capacity BETWEEN 1 AND 1000);

CREATE TABLE class_timetable (
    id         serial PRIMARY KEY,
    service_id integer NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    weekday    smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    starts     time NOT NULL,
    staff_id   integer REFERENCES staff (id),
    capacity   integer CHECK (capacity BETWEEN 1 AND 1000),  -- NULL: the service's
    UNIQUE (service_id, weekday, starts)
);

CREATE TABLE class_sessions (
    id           bigserial PRIMARY KEY,
    service_id   integer NOT NULL REFERENCES services (id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    staff_id     integer REFERENCES staff (id),
    capacity     integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    booked       integer NOT NULL DEFAULT 0,
    timetable_id integer REFERENCES class_timetable (id) ON DELETE SET NULL,
    cancelled_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT class_sessions_seats CHECK (booked BETWEEN 0 AND capacity),
    UNIQUE (service_id, starts_at)
);
CREATE INDEX class_sessions_starts_idx ON class_sessions (starts_at) WHERE cancelled_at IS NULL;

-- A seat is a booking with its session; it has a staff member only when the session has one.
ALTER TABLE bookings ADD COLUMN session_id bigint REFERENCES class_sessions (id);
ALTER TABLE bookings ALTER COLUMN staff_id DROP NOT NULL;
ALTER TABLE bookings ADD CONSTRAINT bookings_staff_or_session
    CHECK (staff_id IS NOT NULL OR session_id IS NOT NULL);
-- One seat per customer and session.
CREATE UNIQUE INDEX bookings_one_seat_idx ON bookings (session_id, customer_id)
    WHERE session_id IS NOT NULL AND status <> 'cancelled';

-- Appointments of one staff member still never overlap; seats in a class do not count.
ALTER TABLE bookings DROP CONSTRAINT bookings_staff_no_overlap;
ALTER TABLE bookings ADD CONSTRAINT bookings_staff_no_overlap EXCLUDE USING gist (
    int4range(staff_id, staff_id, '[]') WITH =,
    tstzrange(starts_at, ends_at) WITH &&
) WHERE (status <> 'cancelled' AND session_id IS NULL);
