-- Tenants across PostgreSQL servers (issue 16, docs/scaling.md). Each tenant's schema and roles
-- live on one registered server; 'default' is the platform's own (DATABASE_URL for the master,
-- TENANT_DATABASE_URL for the bots), and every tenant from before is on it. Another server's
-- admin DSN is encrypted like the tenants' secrets (core/secrets.py, a key derived per server
-- name, so a ciphertext copied to another row does not decrypt); `tenant_dsn_enc` is the
-- address the bots reach it at when that differs (NULL: the admin DSN's host, port and
-- database). `cluster_id` (pg_control_system's system identifier) keeps one cluster from being
-- registered twice: roles are cluster-wide, so two "servers" on one cluster would share them.
CREATE TABLE db_servers (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    admin_dsn_enc  text,
    tenant_dsn_enc text,
    cluster_id     text UNIQUE,
    accepting      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((name = 'default') = (admin_dsn_enc IS NULL))
);
INSERT INTO db_servers (name) VALUES ('default');

ALTER TABLE tenants
    ADD COLUMN db_server text NOT NULL DEFAULT 'default' REFERENCES db_servers (name);
CREATE INDEX tenants_db_server ON tenants (db_server) WHERE status <> 'deleted';

-- A move between servers in progress (master_bot/dbmove.py): 'copying' while the tenant is
-- still on `source` (an interrupted copy is dropped from `target` and the move started again),
-- 'switched' once tenants.db_server says `target` (what is left: start the bot, drop the old
-- copy from `source`). The row is deleted when the move is finished or rolled back.
CREATE TABLE tenant_moves (
    tenant_id  text PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    source     text NOT NULL REFERENCES db_servers (name),
    target     text NOT NULL REFERENCES db_servers (name),
    phase      text NOT NULL CHECK (phase IN ('copying', 'switched')),
    started_at timestamptz NOT NULL DEFAULT now(),
    CHECK (source <> target)
);
