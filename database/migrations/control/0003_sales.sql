-- The sales bot: orders, YooKassa notifications and the outbox towards the master.

-- One order = one payment. `status` is the payment side (pending -> paid -> refunded, or
-- pending -> canceled); `fulfilled_at` says the master has done what was paid for.
CREATE TABLE sales_orders (
    order_id         text PRIMARY KEY CHECK (order_id ~ '^ord_[0-9a-f]{24}$'),
    kind             text NOT NULL CHECK (kind IN ('new', 'extend')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'paid', 'canceled', 'refunded')),
    user_id          bigint NOT NULL,          -- the owner's Telegram id (= private chat id)
    locale           text NOT NULL DEFAULT 'ru' CHECK (locale IN ('ru', 'en')),
    plan             text NOT NULL,
    period_days      integer NOT NULL CHECK (period_days > 0),
    amount           numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency         text NOT NULL DEFAULT 'RUB',
    email            text NOT NULL,
    business_name    text,
    category         text,
    timezone         text,
    bot_id           bigint,
    bot_username     text,
    bot_token_enc    text,                     -- sealed with ENCRYPTION_KEYS; cleared once provisioned
    bot_token_sha256 text,
    tenant_id        text,                     -- known up front for 'extend', after provisioning for 'new'
    idempotence_key  text NOT NULL UNIQUE,     -- YooKassa Idempotence-Key, derived from order_id
    payment_id       text UNIQUE,
    confirmation_url text,
    failure          text,                     -- e.g. bot_token_in_use: the owner must send a new token
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    paid_at          timestamptz,
    canceled_at      timestamptz,
    refunded_at      timestamptz,
    fulfilled_at     timestamptz,
    slow_notified_at timestamptz
);
CREATE INDEX sales_orders_pending_idx ON sales_orders (created_at) WHERE status = 'pending';
CREATE INDEX sales_orders_user_idx ON sales_orders (user_id, created_at);
CREATE INDEX sales_orders_token_idx ON sales_orders (bot_token_sha256) WHERE bot_token_sha256 IS NOT NULL;

-- Every accepted notification, once per (event, object id); duplicates only bump `seen`.
CREATE TABLE sales_notifications (
    key          text PRIMARY KEY,
    event        text NOT NULL,
    object_id    text NOT NULL,
    sender       text NOT NULL,
    seen         integer NOT NULL DEFAULT 1,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    outcome      text
);
CREATE INDEX sales_notifications_open_idx ON sales_notifications (received_at)
    WHERE processed_at IS NULL;

-- Calls to the master, written in the transaction that changes the order; a relay delivers them.
CREATE TABLE sales_outbox (
    id              bigserial PRIMARY KEY,
    order_id        text NOT NULL REFERENCES sales_orders (order_id),
    action          text NOT NULL CHECK (action IN ('provision', 'extend', 'suspend')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    outcome         text,
    last_error      text,
    UNIQUE (order_id, action)
);
CREATE INDEX sales_outbox_due_idx ON sales_outbox (next_attempt_at) WHERE done_at IS NULL;
