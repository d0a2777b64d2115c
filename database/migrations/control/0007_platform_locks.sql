-- Platform locks are row locks on this table (database/locks.py). Advisory locks are not
-- used for them: any role, a tenant's too, can take any advisory lock and hold it for ever.
CREATE TABLE platform_locks (
    name text PRIMARY KEY
);
