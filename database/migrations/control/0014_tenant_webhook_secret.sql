-- Updates by webhook (issue 13, docs/scaling.md): each bot's own random secret_token, which
-- Telegram sends back in X-Telegram-Bot-Api-Secret-Token and the bot compares. Encrypted like
-- the other tenant secrets (core/secrets.py, keys derived per tenant); NULL until the master
-- first sets a webhook for the tenant. The webhook's URL is derived (<WEBHOOK_BASE_URL>/tg/
-- <tenant_id>), never stored, and never contains the bot token.
ALTER TABLE tenants
    ADD COLUMN webhook_secret_enc text;
