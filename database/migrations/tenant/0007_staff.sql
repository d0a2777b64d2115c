-- Staff: a business has one or more staff members, each with their own weekly hours, breaks and
-- days off (the business's unless `own_hours`), and the services they perform (every service
-- unless `all_services` is false; `staff_services` rows list them and may override price and
-- duration). PostgreSQL refuses two overlapping bookings of one staff member; two staff members
-- at the same time are fine. Runs as the tenant's owner role inside the tenant schema.
CREATE TABLE staff (
    id           serial PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    position     integer NOT NULL DEFAULT 0,
    own_hours    boolean NOT NULL DEFAULT false,
    all_services boolean NOT NULL DEFAULT true,
    -- Staff are deactivated, never deleted: their bookings keep pointing at them.
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Used when staff.own_hours: as working_hours/breaks, per staff member.
CREATE TABLE staff_hours (
    staff_id integer NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    weekday  smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    opens    time NOT NULL,
    closes   time NOT NULL,
    PRIMARY KEY (staff_id, weekday, opens),
    CHECK (closes > opens OR closes = '00:00')
);

CREATE TABLE staff_breaks (
    id       serial PRIMARY KEY,
    staff_id integer NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    weekday  smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    starts   time NOT NULL,
    ends     time NOT NULL CHECK (ends > starts)
);
CREATE INDEX staff_breaks_staff_idx ON staff_breaks (staff_id, weekday);

-- A staff member's own days off (vacation), on top of the business's days_off.
CREATE TABLE staff_days_off (
    staff_id integer NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    day      date NOT NULL,
    PRIMARY KEY (staff_id, day)
);

CREATE TABLE staff_services (
    staff_id     integer NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    service_id   integer NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    price        numeric(12, 2) CHECK (price >= 0),
    duration_min integer CHECK (duration_min BETWEEN 5 AND 1440),
    PRIMARY KEY (staff_id, service_id)
);

-- Every business, new or existing, starts with one staff member on the business's hours who
-- performs every service and holds every existing booking: nothing changes until the owner
-- adds staff. Being the first row of a fresh table, it is id 1.
INSERT INTO staff (name)
SELECT CASE WHEN locale = 'en' THEN 'Specialist' ELSE 'Специалист' END FROM business;

-- Bookings of code that does not name a staff member (the legacy import) go to that first one.
ALTER TABLE bookings ADD COLUMN staff_id integer DEFAULT 1 REFERENCES staff (id);
UPDATE bookings SET staff_id = (SELECT min(id) FROM staff);
ALTER TABLE bookings ALTER COLUMN staff_id SET NOT NULL;

ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
-- One staff member, one booking at a time (the database, not only Python, refuses an overlap,
-- also of concurrent confirmations). int4range equality keeps this within core GiST opclasses.
ALTER TABLE bookings ADD CONSTRAINT bookings_staff_no_overlap EXCLUDE USING gist (
    int4range(staff_id, staff_id, '[]') WITH =,
    tstzrange(starts_at, ends_at) WITH &&
) WHERE (status <> 'cancelled');
CREATE INDEX bookings_staff_starts_idx ON bookings (staff_id, starts_at) WHERE status <> 'cancelled';
