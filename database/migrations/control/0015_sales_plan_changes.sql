-- Plan changes from /subscription (issue 17): an upgrade is paid now (a prorated order of kind
-- 'upgrade', its outbox row asks the master to switch the plan); a downgrade is stored on the
-- subscription and applied at the next renewal.
ALTER TABLE sales_orders DROP CONSTRAINT sales_orders_kind_check;
ALTER TABLE sales_orders ADD CONSTRAINT sales_orders_kind_check
    CHECK (kind IN ('new', 'extend', 'renewal', 'upgrade'));
-- The plan an upgrade (or a renewal that carries a downgrade) leaves.
ALTER TABLE sales_orders ADD COLUMN plan_from text;
-- When the master switched the tenant to this order's plan (a downgrade: at the period's start).
ALTER TABLE sales_orders ADD COLUMN plan_switched_at timestamptz;
-- One live upgrade per tenant, period and plan: pressing "upgrade" twice never charges twice.
CREATE UNIQUE INDEX sales_orders_one_upgrade_idx ON sales_orders (tenant_id, cycle_end, plan)
    WHERE kind = 'upgrade' AND status IN ('pending', 'paid');
CREATE INDEX sales_orders_plan_switch_idx ON sales_orders (cycle_end)
    WHERE plan_from IS NOT NULL AND plan_switched_at IS NULL AND status = 'paid';

ALTER TABLE sales_outbox DROP CONSTRAINT sales_outbox_action_check;
ALTER TABLE sales_outbox ADD CONSTRAINT sales_outbox_action_check
    CHECK (action IN ('provision', 'extend', 'suspend', 'change_plan'));

-- A downgrade the owner chose: the next period is charged and served on this plan.
ALTER TABLE sales_subscriptions ADD COLUMN next_plan text;
ALTER TABLE sales_subscriptions ADD COLUMN next_amount numeric(12, 2) CHECK (next_amount > 0);
ALTER TABLE sales_subscriptions ADD COLUMN next_period_days integer CHECK (next_period_days > 0);
ALTER TABLE sales_subscriptions ADD CONSTRAINT sales_subscriptions_next_plan_check
    CHECK ((next_plan IS NULL) = (next_amount IS NULL)
           AND (next_plan IS NULL) = (next_period_days IS NULL));

-- The master's memory of the failed renewals it alerted operators about (once per order).
CREATE TABLE renewal_alerts (
    order_id   text PRIMARY KEY,
    alerted_at timestamptz NOT NULL DEFAULT now()
);
