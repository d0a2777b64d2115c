"""Dialog states (kept in Redis by aiogram's RedisStorage, keys `sales:fsm:...`)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class Onboarding(StatesGroup):
    name = State()
    category = State()
    timezone = State()
    token = State()
    confirm_bot = State()
    email = State()
    consent = State()  # auto-renewal: yes or no, then the payment


class NewToken(StatesGroup):
    token = State()
