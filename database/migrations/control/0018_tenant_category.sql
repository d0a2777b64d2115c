-- The business category the owner picked while buying (issue 14: "the category they picked
-- while buying changes nothing"): it reaches the tenant's bot as BUSINESS_CATEGORY, which seeds
-- an empty business with typical services and hours. '' = none given. Tenants from before
-- take their order's category; their businesses are not seeded again (tenant migration 0011
-- marks a business that already has data).
ALTER TABLE tenants
    ADD COLUMN category text NOT NULL DEFAULT ''
        CHECK (category IN ('', 'beauty', 'health', 'fitness', 'education', 'auto', 'other'));

UPDATE tenants t
   SET category = o.category
  FROM (SELECT DISTINCT ON (tenant_id) tenant_id, category
          FROM sales_orders
         WHERE tenant_id IS NOT NULL
           AND category IN ('beauty', 'health', 'fitness', 'education', 'auto', 'other')
         ORDER BY tenant_id, created_at) o
 WHERE o.tenant_id = t.tenant_id;
