-- "Open the web panel" from /admin (client_bot/handlers/admin/panel.py): the bot keeps the
-- SHA-256 of a one-time random token for the admin who asked; the platform's web spends it as
-- this tenant's own role (web/handlers.py bot_link) and logs the owner in to this bot only.
-- Runs as the tenant's owner role; a table and an index only.
CREATE TABLE web_login_tokens (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    telegram_id bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_login_tokens_expires_idx ON web_login_tokens (expires_at);
