-- "We are setting up your bot" (provisioning is slow) goes through sales_notices too, so that a
-- Telegram outage delays it instead of losing it; it is dropped unsent once the bot is live.
ALTER TABLE sales_notices DROP CONSTRAINT sales_notices_kind_check;
ALTER TABLE sales_notices ADD CONSTRAINT sales_notices_kind_check
    CHECK (kind IN ('live', 'extended', 'suspended', 'token_refused', 'setting_up'));
