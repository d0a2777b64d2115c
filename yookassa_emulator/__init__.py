"""A local YooKassa API fake (aiohttp) for tests and sandbox runs: never used in production.

The real `yookassa` SDK reaches it through `YOOKASSA_API_URL` (`<base_url>/v3`). It stores
payments, refunds and idempotence keys; test controls make a payment succeed, cancel or
refund, and send the webhook notification from a chosen source address (127.0.0.x).
"""

from yookassa_emulator.server import YooKassaFake

__all__ = ["YooKassaFake"]
