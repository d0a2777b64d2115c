-- Tenant schema, first step: the business profile and the customers who started the bot.
-- Runs as the tenant's own role with search_path pinned to the tenant schema.
CREATE TABLE settings (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    telegram_id  bigint PRIMARY KEY,
    first_name   text NOT NULL DEFAULT '',
    username     text,
    phone        text,
    language     text,
    blocked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
