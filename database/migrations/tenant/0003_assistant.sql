-- Client bot: the AI sales assistant — its settings, conversation history, leads, human handoff
-- and token usage. Runs as the tenant role inside the tenant schema.

-- One row: what the admin set in /admin → Assistant.
CREATE TABLE assistant_settings (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    enabled     boolean NOT NULL DEFAULT true,
    faq         text NOT NULL DEFAULT '' CHECK (length(faq) <= 4000),
    tone        text NOT NULL DEFAULT '' CHECK (length(tone) <= 500),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO assistant_settings DEFAULT VALUES;

-- The conversation with each customer: what they wrote (text or a voice transcript), what the
-- assistant answered, and what an admin wrote during a handoff. The customer's message is stored
-- before the model is called.
CREATE TABLE ai_messages (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    role        text NOT NULL CHECK (role IN ('user', 'assistant', 'staff')),
    content     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_messages_customer_idx ON ai_messages (customer_id, id);

CREATE TABLE leads (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    phone       text NOT NULL,
    interest    text NOT NULL DEFAULT '' CHECK (length(interest) <= 300),
    comment     text NOT NULL DEFAULT '' CHECK (length(comment) <= 1000),
    status      text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'in_work', 'won', 'lost')),
    taken_by    bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_customer_idx ON leads (customer_id, created_at);
CREATE INDEX leads_created_idx ON leads (created_at);

-- Customers talking to a person: the assistant stays silent for them while a row exists.
CREATE TABLE ai_handoffs (
    customer_id  bigint PRIMARY KEY,
    reason       text NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL DEFAULT now()
);

-- Tokens spent per day (the budget itself is enforced in Redis; this is for the owner's stats).
CREATE TABLE ai_usage (
    day               date PRIMARY KEY,
    requests          integer NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0
);
