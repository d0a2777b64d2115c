"""The sales bot's routers, in the order they are tried."""

from __future__ import annotations

from aiogram import Router

from sales_bot.handlers import buy, payment, start, subscription


def routers() -> list[Router]:
    return [start.router(), subscription.router(), payment.router(), buy.router(), start.fallback()]
