-- The owner's web lists bookings of a day or week with every status (cancelled ones too, shown
-- struck through; `web/data.py` bookings()), ordered by (starts_at, id). The partial index of
-- 0002 leaves cancelled rows out, so that list scanned the whole table. Runs as the tenant's
-- owner role; an index only.
CREATE INDEX bookings_starts_all_idx ON bookings (starts_at, id);
