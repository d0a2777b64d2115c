"""FSM states of the /deploy dialog."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class DeployForm(StatesGroup):
    name = State()
    plan = State()
    days = State()
    token = State()
    owner = State()
    defaults = State()
    confirm = State()
    running = State()
