-- Auto-renewal (issue 17): the owner's consent, the saved card, and renewal charges as orders.

-- A renewal charge is an order of its own (kind 'renewal'): one per attempt, each with a new
-- idempotence key, settled by the same state machine and outbox as a first payment.
ALTER TABLE sales_orders DROP CONSTRAINT sales_orders_kind_check;
ALTER TABLE sales_orders ADD CONSTRAINT sales_orders_kind_check
    CHECK (kind IN ('new', 'extend', 'renewal'));
-- The owner agreed at checkout that the card may be saved and charged for later periods.
ALTER TABLE sales_orders ADD COLUMN auto_renew boolean NOT NULL DEFAULT false;
-- The payment method YooKassa saved with this order's payment (sealed for this order, like the
-- bot token: cleared once it is copied to the tenant's subscription), its card mask and expiry.
ALTER TABLE sales_orders ADD COLUMN method_enc text;
ALTER TABLE sales_orders ADD COLUMN card_last4 text CHECK (card_last4 ~ '^[0-9]{4}$');
ALTER TABLE sales_orders ADD COLUMN card_expiry text CHECK (card_expiry ~ '^[0-9]{2}/[0-9]{4}$');
-- A renewal: the end of the paid period it renews; why YooKassa (or we) canceled the charge.
ALTER TABLE sales_orders ADD COLUMN cycle_end timestamptz;
ALTER TABLE sales_orders ADD COLUMN cancel_reason text;
-- At most one live charge (pending or paid) per tenant and period: never two for one renewal.
CREATE UNIQUE INDEX sales_orders_one_renewal_idx ON sales_orders (tenant_id, cycle_end)
    WHERE kind = 'renewal' AND status IN ('pending', 'paid');
CREATE INDEX sales_orders_tenant_idx ON sales_orders (tenant_id, created_at)
    WHERE tenant_id IS NOT NULL;

-- One row per tenant sold by the sales bot: what renews, whether it may, with which card.
-- The worker reads and locks this row (FOR UPDATE) in the transaction that claims a charge and
-- again around the charge itself; turning auto-renewal off or removing the card takes the same
-- lock, so a switch and a charge never interleave.
CREATE TABLE sales_subscriptions (
    tenant_id       text PRIMARY KEY CHECK (tenant_id ~ '^client_[0-9]{1,12}$'),
    user_id         bigint NOT NULL,
    locale          text NOT NULL DEFAULT 'ru' CHECK (locale IN ('ru', 'en')),
    email           text NOT NULL,
    bot_username    text,
    business_name   text,
    plan            text NOT NULL,
    period_days     integer NOT NULL CHECK (period_days > 0),
    amount          numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency        text NOT NULL DEFAULT 'RUB',
    auto_renew      boolean NOT NULL DEFAULT false,
    consent_at      timestamptz,                -- the owner's last "yes" to auto-renewal
    revoked_at      timestamptz,                -- the owner's last "no" (or card removal)
    method_enc      text,                       -- SecretBox ciphertext bound to tenant_id
    card_last4      text CHECK (card_last4 ~ '^[0-9]{4}$'),
    card_expiry     text CHECK (card_expiry ~ '^[0-9]{2}/[0-9]{4}$'),
    paid_until      timestamptz,                -- as the master last reported it
    next_charge_at  timestamptz,                -- NULL: no charge planned
    failures        integer NOT NULL DEFAULT 0, -- failed charges of the current period
    last_attempt_at timestamptz,                -- the worker's clock at its last claim: retries count from it
    last_failure    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT auto_renew OR method_enc IS NOT NULL)
);
CREATE INDEX sales_subscriptions_due_idx ON sales_subscriptions (next_charge_at)
    WHERE auto_renew AND next_charge_at IS NOT NULL;
CREATE INDEX sales_subscriptions_user_idx ON sales_subscriptions (user_id);
