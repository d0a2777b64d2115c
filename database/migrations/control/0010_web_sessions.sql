-- Sessions of the owner's web. A login opens a session; each refresh token is single-use
-- (rotation): using one marks it used and issues the next in the same session. A used token
-- presented again means it leaked: the whole session is revoked. Access JWTs carry the session
-- id and are refused once it is revoked (logout). Only SHA-256 digests of tokens are stored.
CREATE TABLE web_sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  bigint NOT NULL REFERENCES web_accounts (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoke_reason text
);
CREATE INDEX web_sessions_account_idx ON web_sessions (account_id);

CREATE TABLE web_refresh_tokens (
    token_sha256 text PRIMARY KEY CHECK (length(token_sha256) = 64),
    session_id   uuid NOT NULL REFERENCES web_sessions (id) ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_refresh_tokens_session_idx ON web_refresh_tokens (session_id);

-- One-time login links (web/links.py): the id of each link once used, until it expires.
CREATE TABLE web_used_links (
    jti        text PRIMARY KEY CHECK (length(jti) BETWEEN 16 AND 64),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);

-- The public key a business embeds with the website chat widget (not a secret: it names the
-- tenant); origins allowed to call the widget API (empty: any).
CREATE TABLE web_widget_keys (
    key             text PRIMARY KEY CHECK (key ~ '^w_[A-Za-z0-9_-]{16,64}$'),
    tenant_id       text NOT NULL UNIQUE REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    allowed_origins text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
