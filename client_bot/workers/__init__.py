"""Background work of a client bot: reminders and broadcasts (state in PostgreSQL)."""
