-- Orders placed on the owner's web (issue 15): a registered account chooses a plan, pays on
-- YooKassa's page and only then gives the bot token. Such an order names the web account that
-- placed it (the web shows it and, once provisioned, its tenant to that account only); the
-- owner's Telegram id, which the master needs for the bot's /admin, is learned with the token
-- (whoever pressed Start in the new bot), so until then it may be unknown.
ALTER TABLE sales_orders ADD COLUMN web_account_id bigint REFERENCES web_accounts (id);
ALTER TABLE sales_orders ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE sales_orders ADD CONSTRAINT sales_orders_owner_check
    CHECK (user_id IS NOT NULL OR (web_account_id IS NOT NULL AND kind = 'new'
                                   AND bot_token_enc IS NULL AND fulfilled_at IS NULL));
CREATE INDEX sales_orders_web_account_idx ON sales_orders (web_account_id, created_at)
    WHERE web_account_id IS NOT NULL;
-- One unpaid web order per account and plan: "Buy" pressed twice (or a second tab) gets the
-- same order and payment, never a second charge.
CREATE UNIQUE INDEX sales_orders_one_web_pending_idx ON sales_orders (web_account_id, plan)
    WHERE web_account_id IS NOT NULL AND status = 'pending';
