-- The owner's web (web/): a session opened by a bot's "Open the web panel" link is limited to
-- that bot (tenant_id): the link was vouched for by the tenant's own data, which must never
-- reach the owner's other bots or the account's credentials. NULL: the whole account.
ALTER TABLE web_sessions ADD COLUMN tenant_id text REFERENCES tenants (tenant_id) ON DELETE CASCADE;

-- Password resets: one-time, short-lived; only the SHA-256 of the random token is kept.
CREATE TABLE web_password_resets (
    token_sha256 text PRIMARY KEY CHECK (length(token_sha256) = 64),
    account_id   bigint NOT NULL REFERENCES web_accounts (id) ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_password_resets_account_idx ON web_password_resets (account_id);
