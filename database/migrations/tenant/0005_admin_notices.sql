-- Notices to the business's admins that Telegram has not delivered yet (an owner who has never
-- opened their own bot gets "chat not found"; Telegram may be down). They are kept here and
-- delivered oldest first, each once, when the admin writes to the bot or on the periodic retry
-- (client_bot/notices.py). Delivered and abandoned ones are deleted after a while (housekeeping).
CREATE TABLE admin_notices (
    id           bigserial PRIMARY KEY,
    admin_id     bigint NOT NULL,
    text         text NOT NULL CHECK (length(text) BETWEEN 1 AND 4096),
    reply_markup jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    sent_at      timestamptz,
    gave_up_at   timestamptz
);
CREATE INDEX admin_notices_pending_idx ON admin_notices (admin_id, id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;

-- Who is delivering an admin's notices now: a short lease, so that two deliveries (a new notice,
-- the admin's message, the retry) never send one notice twice or two out of order.
CREATE TABLE admin_notice_leases (
    admin_id bigint PRIMARY KEY,
    until    timestamptz NOT NULL
);
