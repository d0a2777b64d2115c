"""The sales domain, wired once: the catalog, the store, the vault, billing, owners' notices,
the relay to the master, renewals and the periodic check. The bot's handlers, the YooKassa
webhook and the workers all share these objects; `SalesApp` (app.py) puts Telegram and HTTP
around them."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiogram import Bot
from aiogram.utils.i18n import I18n

from core.secrets import SecretBox
from core.settings import SalesSettings
from sales_bot.billing import Billing
from sales_bot.kassa import PaymentGateway
from sales_bot.master import MasterApi
from sales_bot.notices import Notices
from sales_bot.owner import BotNotifier
from sales_bot.plans import Catalog, load_plans
from sales_bot.relay import Relay
from sales_bot.renewals import Renewals
from sales_bot.store import SalesStore
from sales_bot.vault import Vault
from sales_bot.watch import Watcher


@dataclass(slots=True)
class Tuning:
    """Timings tests shorten; production uses the defaults and the settings."""

    relay_base_delay: float = 1.0
    relay_poll: float = 2.0
    relay_lease: float = 180.0
    notification_retry_after: float = 30.0


@dataclass(slots=True)
class SalesServices:
    catalog: Catalog
    store: SalesStore
    vault: Vault
    notifier: BotNotifier
    billing: Billing
    notices: Notices
    relay: Relay
    renewals: Renewals
    watcher: Watcher


def build_services(
    settings: SalesSettings,
    *,
    pool: asyncpg.Pool,
    bot: Bot,
    i18n: I18n,
    kassa: PaymentGateway,
    master: MasterApi,
    tuning: Tuning,
) -> SalesServices:
    """The domain objects of these settings, and the callbacks that tie them together: billing
    wakes the relay when it writes to the outbox; a delivered order arms its renewal; an upgrade
    paid too late is refunded, not applied."""
    keys = settings.encryption_keys.get_secret_value()
    catalog = Catalog(load_plans(settings.sales_plans_file))
    store = SalesStore(pool, renewal_days_before=settings.renewal_days_before)
    vault = Vault(keys)
    notifier = BotNotifier(bot, i18n, catalog)
    billing = Billing(
        store,
        kassa,
        vault,
        refund_suspends=settings.sales_refund_suspends,
        renewal_retry_days=tuple(settings.renewal_retry_days),
        catalog=catalog,
    )
    notices = Notices(store, notifier, max_delay=settings.sales_retry_max_delay)
    relay = Relay(
        store,
        master,
        vault,
        notices,
        base_delay=tuning.relay_base_delay,
        max_delay=settings.sales_retry_max_delay,
        poll=tuning.relay_poll,
        lease=tuning.relay_lease,
    )
    renewals = Renewals(
        store,
        billing,
        kassa,
        vault,
        SecretBox(keys),
        notices,
        catalog,
        master,
        interval=settings.renewal_interval,
    )
    watcher = Watcher(
        store,
        billing,
        notices,
        interval=settings.sales_check_interval,
        check_after=settings.sales_check_after,
        slow_after=settings.sales_slow_after,
        retry_notifications_after=tuning.notification_retry_after,
    )
    billing.on_outbox = relay.wake
    relay.on_fulfilled = renewals.after_fulfilled
    relay.refund_late = billing.refund_late
    return SalesServices(
        catalog=catalog,
        store=store,
        vault=vault,
        notifier=notifier,
        billing=billing,
        notices=notices,
        relay=relay,
        renewals=renewals,
        watcher=watcher,
    )
