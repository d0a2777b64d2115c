-- Where a tenant's bot runs (issue 13): 'dedicated' (a container or process of its own) or
-- 'shared' (one of up to HUB_CAPACITY tenants in a hub process). NULL: its plan's default
-- (plans.json "placement"), so a plan's default can change without rewriting rows; an
-- operator's move (POST /api/v1/tenants/{id}/placement) sets it explicitly.
ALTER TABLE tenants
    ADD COLUMN placement text CHECK (placement IN ('dedicated', 'shared'));
