-- Messages to owners outside a dialog ("your bot is live", "extended", "paused", "send another
-- token"). A row is written before the message is sent and marked sent after Telegram took it,
-- so a Telegram outage (or a crash) delays the message instead of losing it: the relay retries
-- due rows with backoff. One row per order and kind: an event is told once.
CREATE TABLE sales_notices (
    id              bigserial PRIMARY KEY,
    order_id        text NOT NULL REFERENCES sales_orders (order_id),
    kind            text NOT NULL CHECK (kind IN ('live', 'extended', 'suspended', 'token_refused')),
    payload         jsonb NOT NULL DEFAULT '{}',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    gave_up_at      timestamptz,               -- the owner blocked the bot, or the chat is gone
    last_error      text,
    UNIQUE (order_id, kind)
);
CREATE INDEX sales_notices_due_idx ON sales_notices (next_attempt_at)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
