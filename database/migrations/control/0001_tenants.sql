-- Platform tables of the control plane. The desired state of the fleet lives here.
CREATE TABLE tenants (
    tenant_id        text PRIMARY KEY CHECK (tenant_id ~ '^client_[0-9]{1,12}$'),
    number           bigint NOT NULL UNIQUE CHECK (number > 0),
    status           text NOT NULL DEFAULT 'provisioning'
                     CHECK (status IN ('provisioning', 'active', 'stopped', 'suspended', 'failed', 'deleted')),
    plan             text NOT NULL,
    business_name    text NOT NULL,
    owner_telegram_id bigint NOT NULL,
    locale           text NOT NULL DEFAULT 'ru' CHECK (locale IN ('ru', 'en')),
    timezone         text NOT NULL DEFAULT 'Europe/Moscow',
    bot_id           bigint,
    bot_username     text,
    bot_token_enc    text,                 -- SecretBox ciphertext, bound to tenant_id
    bot_token_sha256 text UNIQUE,          -- one token serves one tenant (409 on reuse)
    db_password_enc  text,
    redis_password_enc text,
    provision_step   text NOT NULL DEFAULT 'allocated',
    expires_at       timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_status_idx ON tenants (status);
CREATE INDEX tenants_expires_idx ON tenants (expires_at) WHERE status IN ('active', 'suspended');

-- Idempotency keys of the REST API: a retried request returns the first result.
CREATE TABLE idempotency_keys (
    key         text NOT NULL,
    scope       text NOT NULL,
    tenant_id   text REFERENCES tenants (tenant_id),
    response    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Who did what, when: every state change of a tenant.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    tenant_id   text,
    action      text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, at);
