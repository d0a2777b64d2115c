-- The profile's name, language and time zone come from the master's contract (BUSINESS_NAME,
-- LOCALE, TIMEZONE: what the owner told the sales bot) until the owner changes them in /admin.
-- owner_set lists the fields the owner has set; the bot's start never overwrites those.
ALTER TABLE business ADD COLUMN owner_set text[] NOT NULL DEFAULT '{}';

-- Bots that ran before this column: a value other than the table's default was set by the owner
-- (the contract never reached the table then), so keep it.
UPDATE business SET owner_set = array_remove(ARRAY[
    CASE WHEN name <> '' THEN 'name' END,
    CASE WHEN locale <> 'ru' THEN 'locale' END,
    CASE WHEN timezone <> 'Europe/Moscow' THEN 'timezone' END
], NULL);
