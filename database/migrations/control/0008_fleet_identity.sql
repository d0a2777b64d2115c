-- Who this fleet is, for the names it shares with other fleets on one PostgreSQL cluster,
-- one Redis and one Docker Engine: roles and ACL users carry this id as their owner's mark,
-- and a master never takes over one that bears another fleet's (database/roles.py).
CREATE TABLE fleet (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    singleton  boolean NOT NULL UNIQUE DEFAULT true CHECK (singleton),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO fleet DEFAULT VALUES;
