"""The sales bot: sells plans, takes YooKassa payments, has tenants provisioned exactly once."""
