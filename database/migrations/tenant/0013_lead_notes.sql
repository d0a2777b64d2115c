-- Notes on a lead by the business's people, written in /admin → Leads → a lead → 📝 or on the
-- owner's web (the same rows both show). `author_id` is the writer's Telegram id (the web writes
-- the account's, or the bot owner's); `via` says where it was written. Runs as the tenant's
-- owner role; a table and an index only.
CREATE TABLE lead_notes (
    id         bigserial PRIMARY KEY,
    lead_id    bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    author_id  bigint NOT NULL,
    via        text NOT NULL DEFAULT 'telegram' CHECK (via IN ('telegram', 'web')),
    body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 1000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_notes_lead_idx ON lead_notes (lead_id, id);
