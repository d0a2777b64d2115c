-- Client bot: business profile and rules, services, schedule, admins, bookings, reminders,
-- broadcasts. Runs as the tenant role inside the tenant schema.

-- One row: the business as its customers see it, and its booking rules.
CREATE TABLE business (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    name            text NOT NULL DEFAULT '',
    welcome_text    text NOT NULL DEFAULT '',
    address         text NOT NULL DEFAULT '',
    phone           text NOT NULL DEFAULT '',
    map_url         text NOT NULL DEFAULT '',
    timezone        text NOT NULL DEFAULT 'Europe/Moscow',
    locale          text NOT NULL DEFAULT 'ru' CHECK (locale IN ('ru', 'en')),
    slot_step       integer NOT NULL DEFAULT 30 CHECK (slot_step BETWEEN 5 AND 240),
    buffer_min      integer NOT NULL DEFAULT 0 CHECK (buffer_min BETWEEN 0 AND 240),
    lead_time_min   integer NOT NULL DEFAULT 60 CHECK (lead_time_min BETWEEN 0 AND 10080),
    horizon_days    integer NOT NULL DEFAULT 30 CHECK (horizon_days BETWEEN 1 AND 365),
    cancel_cutoff_min integer NOT NULL DEFAULT 120 CHECK (cancel_cutoff_min BETWEEN 0 AND 10080),
    reminder_offsets_min integer[] NOT NULL DEFAULT '{1440,120}',
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO business DEFAULT VALUES;

CREATE TABLE services (
    id           serial PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description  text NOT NULL DEFAULT '',
    price        numeric(12, 2) NOT NULL CHECK (price >= 0),
    duration_min integer NOT NULL CHECK (duration_min BETWEEN 5 AND 1440),
    position     integer NOT NULL DEFAULT 0,
    hidden       boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Weekly working hours: several intervals per weekday (0 = Monday); none = closed.
CREATE TABLE working_hours (
    weekday  smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    opens    time NOT NULL,
    closes   time NOT NULL,
    PRIMARY KEY (weekday, opens),
    CHECK (closes > opens OR closes = '00:00')
);

CREATE TABLE breaks (
    id       serial PRIMARY KEY,
    weekday  smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    starts   time NOT NULL,
    ends     time NOT NULL CHECK (ends > starts)
);

CREATE TABLE days_off (
    day   date PRIMARY KEY,
    note  text NOT NULL DEFAULT ''
);

-- Admins added in the panel (ADMIN_IDS from the environment are admins too).
CREATE TABLE admins (
    telegram_id bigint PRIMARY KEY,
    added_by    bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bookings (
    id            bigserial PRIMARY KEY,
    customer_id   bigint NOT NULL REFERENCES customers (telegram_id),
    service_id    integer NOT NULL REFERENCES services (id),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL CHECK (ends_at > starts_at),
    status        text NOT NULL DEFAULT 'confirmed'
                  CHECK (status IN ('confirmed', 'done', 'no_show', 'cancelled')),
    customer_name text NOT NULL DEFAULT '',
    phone         text NOT NULL,
    source        text NOT NULL DEFAULT 'menu',
    cancel_note   text,
    cancelled_by  text CHECK (cancelled_by IN ('customer', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- The database, not only Python, refuses a second booking of an overlapping time.
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status <> 'cancelled')
);
CREATE INDEX bookings_customer_idx ON bookings (customer_id, starts_at);
CREATE INDEX bookings_starts_idx ON bookings (starts_at) WHERE status <> 'cancelled';

-- Due reminders live here, not in memory: sent exactly once, also across restarts.
CREATE TABLE reminders (
    booking_id  bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    offset_min  integer NOT NULL,
    due_at      timestamptz NOT NULL,
    sent_at     timestamptz,
    PRIMARY KEY (booking_id, offset_min)
);
CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE sent_at IS NULL;

CREATE TABLE broadcasts (
    id                  bigserial PRIMARY KEY,
    text                text NOT NULL,
    created_by          bigint NOT NULL,
    status              text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    progress_chat_id    bigint,
    progress_message_id bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);

-- One row per recipient: 'sending' is claimed before the call to Telegram, so a restart
-- never sends the same customer the message twice.
CREATE TABLE broadcast_recipients (
    broadcast_id bigint NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    customer_id  bigint NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sending', 'sent', 'blocked', 'failed')),
    error        text,
    PRIMARY KEY (broadcast_id, customer_id)
);
CREATE INDEX broadcast_pending_idx ON broadcast_recipients (broadcast_id) WHERE status = 'pending';
