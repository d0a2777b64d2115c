-- Imports of legacy per-client SQLite databases (scripts/migrate_to_postgres.py).
-- Which legacy row became which tenant row: a re-run skips what is mapped, so nothing is
-- imported twice. Customers and admins need no mapping: their Telegram id is the key.
CREATE TABLE legacy_import_map (
    tenant_id   text NOT NULL,
    source      text NOT NULL CHECK (source IN ('services', 'bookings')),
    legacy_id   text NOT NULL,
    target_id   bigint NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, source, legacy_id)
);

-- One row per import that was committed (dry runs leave nothing), with its per-table counts.
CREATE TABLE legacy_import_runs (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    file_name   text NOT NULL,
    file_sha256 text NOT NULL,
    counts      jsonb NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX legacy_import_runs_tenant_idx ON legacy_import_runs (tenant_id, finished_at);
