"""What handlers need, handed to them through `Dispatcher(ctx=...)` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from sales_bot.billing import Billing
from sales_bot.i18n import UserLocaleMiddleware
from sales_bot.master import MasterApi
from sales_bot.plans import Catalog
from sales_bot.store import SalesStore
from sales_bot.vault import Vault


@dataclass(slots=True)
class SalesContext:
    store: SalesStore
    billing: Billing
    master: MasterApi
    vault: Vault
    catalog: Catalog
    locales: UserLocaleMiddleware
    telegram_api_url: str
    telegram_timeout: float
    support_contact: str
    own_bot_id: int = 0
    renewal_days_before: int = 3
