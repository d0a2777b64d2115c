-- A bookable bot from its first start: the business category the owner picked in the sales bot
-- (BUSINESS_CATEGORY) seeds example services, typical hours and, for classes, a timetable, once.
-- `category` records that it happened (NULL: never seeded), so a restart or an owner who has
-- since removed the examples never gets them back. Bots that ran before this column keep
-- everything they have and are never seeded: their owner already set them up.
-- Staff photos: a Telegram file_id the admin sent; customers see it when choosing staff.
-- Runs as the tenant's owner role; columns only.
ALTER TABLE business ADD COLUMN category text CHECK (length(category) <= 32);
UPDATE business SET category = '' WHERE EXISTS (SELECT 1 FROM services)
    OR EXISTS (SELECT 1 FROM working_hours);

ALTER TABLE staff ADD COLUMN photo_file_id text CHECK (length(photo_file_id) <= 256);
