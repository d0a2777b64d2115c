"""What the panel is waiting for the admin to type. One group, so `/cancel` and the "please send
text" guard can match all of them; FSM data says which item an edit is for."""

from aiogram.fsm.state import State, StatesGroup


class AdminInput(StatesGroup):
    service_add = State()  # `Name; price; minutes; description`
    service_edit = State()  # data: service_id, key (ServiceAction)
    hours = State()  # data: weekday
    breaks = State()  # data: weekday
    day_off = State()
    rule = State()  # data: key (RuleKey)
    profile = State()  # data: key (ProfileKey)
    booking_date = State()
    cancel_note = State()  # data: booking_id
    broadcast_text = State()
    broadcast_confirm = State()  # data: text (HTML)
    admin_add = State()
    assistant_faq = State()
    assistant_tone = State()
    handoff_reply = State()  # data: customer_id
    lead_note = State()  # data: lead_id, page
    staff_add = State()  # `Name; description`
    staff_edit = State()  # data: staff_id, key (StaffAction.name / description)
    staff_week = State()  # data: staff_id, weekday: `hours / breaks`
    staff_terms = State()  # data: staff_id, service_id: `price; minutes` or -
    staff_day_off = State()  # data: staff_id
    class_capacity = State()  # data: service_id
    class_weekly = State()  # data: service_id: `Wed 18:00`
    class_once = State()  # data: service_id: `31.12 18:00`
