-- A refunded upgrade (issue 17): the tenant goes back to the plan its period was paid on (an
-- outbox row 'revert_plan', delivered after the upgrade's own 'change_plan'), and the owner is
-- told (a notice 'upgrade_refunded', kept until Telegram takes it).
ALTER TABLE sales_outbox DROP CONSTRAINT sales_outbox_action_check;
ALTER TABLE sales_outbox ADD CONSTRAINT sales_outbox_action_check
    CHECK (action IN ('provision', 'extend', 'suspend', 'change_plan', 'revert_plan'));

ALTER TABLE sales_notices DROP CONSTRAINT sales_notices_kind_check;
ALTER TABLE sales_notices ADD CONSTRAINT sales_notices_kind_check
    CHECK (kind IN ('live', 'extended', 'suspended', 'token_refused', 'setting_up',
                    'renewal_soon', 'renewal_failed', 'upgrade_refunded'));
