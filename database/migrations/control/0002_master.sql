-- Master control plane: tenant numbering, request fingerprints, lifecycle times, reminders.
CREATE SEQUENCE IF NOT EXISTS tenant_number_seq START 1 MINVALUE 1;
SELECT setval('tenant_number_seq', greatest((SELECT max(number) FROM tenants), 1),
              (SELECT max(number) FROM tenants) IS NOT NULL);

-- A retried request must carry the same body as the first one under its key.
ALTER TABLE idempotency_keys ADD COLUMN request_sha256 text;

ALTER TABLE tenants ADD COLUMN suspended_at timestamptz;
ALTER TABLE tenants ADD COLUMN deleted_at timestamptz;
-- A token may be reused by a new tenant once its old tenant is deleted.
ALTER TABLE tenants DROP CONSTRAINT tenants_bot_token_sha256_key;
CREATE UNIQUE INDEX tenants_live_token_idx ON tenants (bot_token_sha256)
    WHERE status <> 'deleted';

-- Subscription reminders: at most one per (tenant, threshold, expiry being announced).
CREATE TABLE subscription_reminders (
    tenant_id      text NOT NULL REFERENCES tenants (tenant_id),
    threshold_days integer NOT NULL CHECK (threshold_days > 0),
    expires_at     timestamptz NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    error          text,
    PRIMARY KEY (tenant_id, threshold_days, expires_at)
);
