-- Staff in Telegram: a staff member is linked to one Telegram account through a one-time invite
-- link an admin creates (only the code's SHA-256 is kept; it expires and is used once). Linked
-- staff see their own day, get notices and reminders of their own bookings, and mark their own
-- visits done or no-show. Runs as the tenant's owner role; tables and constraints only.
ALTER TABLE staff ADD COLUMN telegram_id bigint;
-- One Telegram account is one staff member.
CREATE UNIQUE INDEX staff_telegram_idx ON staff (telegram_id) WHERE telegram_id IS NOT NULL;

CREATE TABLE staff_invites (
    code_hash  bytea PRIMARY KEY CHECK (length(code_hash) = 32),
    staff_id   integer NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_by bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    used_by    bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((used_at IS NULL) = (used_by IS NULL))
);
CREATE INDEX staff_invites_staff_idx ON staff_invites (staff_id);

-- A booking moved to another time or staff member keeps its number; when, and how often.
ALTER TABLE bookings ADD COLUMN moved_at timestamptz;
ALTER TABLE bookings ADD COLUMN moves integer NOT NULL DEFAULT 0 CHECK (moves >= 0);
