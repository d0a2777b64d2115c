"""The owner's web beside Telegram (`python -m web`): accounts with JWT, an API with Swagger UI at
`/docs`, and a website chat widget answered by the same AI assistant as the tenant's bot.

Accounts live in the control schema; a tenant's data is reached only through the tenant's own
database role and Redis ACL user (`tenants`), never with platform rights.
"""
