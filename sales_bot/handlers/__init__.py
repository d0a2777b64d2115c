"""The sales bot's routers, in the order they are tried."""

from __future__ import annotations

from aiogram import Router

from sales_bot.handlers import buy, payment, start, subscription


def routers() -> list[Router]:
    # subscription first: its /start deep link (from the owner's web) goes before /start.
    return [subscription.router(), start.router(), payment.router(), buy.router(), start.fallback()]
