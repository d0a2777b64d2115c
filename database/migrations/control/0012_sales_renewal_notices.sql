-- Auto-renewal messages to owners go through sales_notices (kept until Telegram takes them):
-- "we are about to charge your card" and "the charge failed" (with the reason and a pay button).
ALTER TABLE sales_notices DROP CONSTRAINT sales_notices_kind_check;
ALTER TABLE sales_notices ADD CONSTRAINT sales_notices_kind_check
    CHECK (kind IN ('live', 'extended', 'suspended', 'token_refused', 'setting_up',
                    'renewal_soon', 'renewal_failed'));
