"""FSM states (stored by aiogram's RedisStorage under the tenant prefix)."""

from aiogram.fsm.state import State, StatesGroup


class BookingForm(StatesGroup):
    contact = State()  # a slot is chosen; waiting for a phone number
    confirm = State()  # summary shown; waiting for Confirm
    waitlist_contact = State()  # joining a class's waitlist; waiting for a phone number
