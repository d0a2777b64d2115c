-- The assistant's history is kept ASSISTANT_HISTORY_DAYS (client_bot/workers/housekeeping.py
-- deletes older messages); this index makes that hourly delete cheap.
CREATE INDEX ai_messages_created_idx ON ai_messages (created_at);
