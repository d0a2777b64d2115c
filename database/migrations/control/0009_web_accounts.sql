-- The owner's web (web/): accounts and the tenants they own. Passwords are Argon2id hashes
-- (argon2-cffi's encoded form); an account made by a login link from the sales bot or /admin
-- has a Telegram id and may have no email or password yet.
CREATE TABLE web_accounts (
    id                bigserial PRIMARY KEY,
    email             text CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash     text,
    company_name      text NOT NULL DEFAULT '' CHECK (length(company_name) <= 200),
    owner_telegram_id bigint UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (email IS NOT NULL OR owner_telegram_id IS NOT NULL)
);
CREATE UNIQUE INDEX web_accounts_email_idx ON web_accounts (email) WHERE email IS NOT NULL;

-- Tenants an account owns besides those bought under its Telegram id (tenants.owner_telegram_id
-- = web_accounts.owner_telegram_id counts as owned without a row here).
CREATE TABLE web_account_tenants (
    account_id  bigint NOT NULL REFERENCES web_accounts (id) ON DELETE CASCADE,
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    role        text NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, tenant_id)
);
CREATE INDEX web_account_tenants_tenant_idx ON web_account_tenants (tenant_id);
