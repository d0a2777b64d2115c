"""Inline keyboards of the admin panel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.callbacks import LeadAction, LeadCb, LeadStatus, MoveAdminCb, MoveStep
from client_bot.handlers.admin.callbacks import (
    AdminCb,
    AdminsAction,
    AdminsCb,
    AssistantAction,
    AssistantCb,
    BookingAction,
    BookingAdminCb,
    ClassAction,
    ClassAdminCb,
    CustomersAction,
    CustomersCb,
    Locale,
    LocaleCb,
    ProfileCb,
    ProfileKey,
    RuleCb,
    RuleKey,
    ScheduleAction,
    ScheduleCb,
    Screen,
    ServiceAction,
    ServiceAdminCb,
    pack_day,
)
from client_bot.keyboards import Buttons
from client_bot.notices import lead_status_name
from client_bot.store import Booking, Lead, Service


def _back(kb: Buttons, screen: Screen) -> None:
    labels = {
        Screen.home: _("« Panel"),
        Screen.settings: _("« Settings"),
        Screen.services: _("« Services"),
        Screen.schedule: _("« Schedule"),
        Screen.profile: _("« Profile"),
        Screen.customers: _("« Customers"),
        Screen.leads: _("« Leads"),
        Screen.staff: _("« Staff"),
    }
    kb.button(text=labels.get(screen, _("« Back")), callback_data=AdminCb(screen=screen))


def home() -> InlineKeyboardMarkup:
    kb = Buttons()
    kb.button(text=_("📅 Bookings"), callback_data=AdminCb(screen=Screen.bookings))
    kb.button(text=_("👥 Customers"), callback_data=AdminCb(screen=Screen.customers))
    kb.button(text=_("🔥 Leads"), callback_data=AdminCb(screen=Screen.leads))
    kb.button(text=_("🤖 Assistant"), callback_data=AdminCb(screen=Screen.assistant))
    kb.button(text=_("📊 Statistics"), callback_data=AdminCb(screen=Screen.stats))
    kb.button(text=_("⚙️ Settings"), callback_data=AdminCb(screen=Screen.settings))
    kb.adjust(2)
    return kb.as_markup()


def settings() -> InlineKeyboardMarkup:
    kb = Buttons()
    kb.button(text=_("💇 Services"), callback_data=AdminCb(screen=Screen.services))
    kb.button(text=_("🕒 Schedule"), callback_data=AdminCb(screen=Screen.schedule))
    kb.button(text=_("📏 Booking rules"), callback_data=AdminCb(screen=Screen.rules))
    kb.button(text=_("🏷 Business profile"), callback_data=AdminCb(screen=Screen.profile))
    kb.button(text=_("🔑 Admins"), callback_data=AdminCb(screen=Screen.admins))
    kb.button(text=_("👤 Staff"), callback_data=AdminCb(screen=Screen.staff))
    _back(kb, Screen.home)
    kb.adjust(2, 2, 2, 1)
    return kb.as_markup()


def back(screen: Screen) -> InlineKeyboardMarkup:
    kb = Buttons()
    _back(kb, screen)
    return kb.as_markup()


def cancel_input(back: CallbackData | None) -> InlineKeyboardMarkup | None:
    if back is None:
        return None
    kb = Buttons()
    kb.button(text=_("✖️ Cancel"), callback_data=back)
    return kb.as_markup()


# --- services ---------------------------------------------------------------------------------
def services(items: Sequence[Service]) -> InlineKeyboardMarkup:
    kb = Buttons()
    for s in items:
        kb.button(
            text=("🙈 " if s.hidden else "") + s.name,
            callback_data=ServiceAdminCb(action=ServiceAction.view, service_id=s.id),
        )
    kb.button(text=_("➕ Add a service"), callback_data=ServiceAdminCb(action=ServiceAction.add))
    _back(kb, Screen.settings)
    kb.adjust(1)
    return kb.as_markup()


def service(item: Service) -> InlineKeyboardMarkup:
    kb = Buttons()

    def button(label: str, action: ServiceAction) -> None:
        kb.button(text=label, callback_data=ServiceAdminCb(action=action, service_id=item.id))

    button(_("✏️ Name"), ServiceAction.name)
    button(_("✏️ Price"), ServiceAction.price)
    button(_("✏️ Duration"), ServiceAction.duration)
    button(_("✏️ Description"), ServiceAction.description)
    button(_("👁 Show") if item.hidden else _("🙈 Hide"), ServiceAction.hide)
    button(_("⬆️ Up"), ServiceAction.up)
    button(_("⬇️ Down"), ServiceAction.down)
    kb.button(
        text=_("👥 Group class"),
        callback_data=ClassAdminCb(action=ClassAction.capacity, service_id=item.id),
    )
    if item.is_class:
        kb.button(
            text=_("🗓 Timetable"),
            callback_data=ClassAdminCb(action=ClassAction.timetable, service_id=item.id),
        )
    _back(kb, Screen.services)
    kb.adjust(2, 2, 1, 2, 2 if item.is_class else 1, 1)
    return kb.as_markup()


# --- schedule ---------------------------------------------------------------------------------
def schedule(days_off: Sequence[date], locale: str) -> InlineKeyboardMarkup:
    kb = Buttons()
    for weekday in range(7):
        kb.button(
            text=text.weekday_short(weekday, locale),
            callback_data=ScheduleCb(action=ScheduleAction.weekday, weekday=weekday),
        )
    kb.button(
        text=_("➕ Add a day off"), callback_data=ScheduleCb(action=ScheduleAction.add_day_off)
    )
    for d in days_off:
        kb.button(
            text=_("✖️ {day}").format(day=text.day(d, locale)),
            callback_data=ScheduleCb(action=ScheduleAction.remove_day_off, day=pack_day(d)),
        )
    _back(kb, Screen.settings)
    kb.adjust(7, *([1] * (len(days_off) + 2)))
    return kb.as_markup()


def weekday(weekday: int) -> InlineKeyboardMarkup:
    kb = Buttons()
    kb.button(
        text=_("✏️ Hours"), callback_data=ScheduleCb(action=ScheduleAction.hours, weekday=weekday)
    )
    kb.button(
        text=_("✏️ Breaks"), callback_data=ScheduleCb(action=ScheduleAction.breaks, weekday=weekday)
    )
    _back(kb, Screen.schedule)
    kb.adjust(2, 1)
    return kb.as_markup()


# --- rules and profile --------------------------------------------------------------------------
def rules(labels: Sequence[tuple[RuleKey, str]]) -> InlineKeyboardMarkup:
    kb = Buttons()
    for key, label in labels:
        kb.button(text=label, callback_data=RuleCb(key=key))
    _back(kb, Screen.settings)
    kb.adjust(2, 2, 2, 1)
    return kb.as_markup()


def profile(labels: Sequence[tuple[ProfileKey, str]]) -> InlineKeyboardMarkup:
    kb = Buttons()
    for key, label in labels:
        kb.button(text=label, callback_data=ProfileCb(key=key))
    _back(kb, Screen.settings)
    kb.adjust(2, 2, 2, 1, 1)
    return kb.as_markup()


def locales() -> InlineKeyboardMarkup:
    kb = Buttons()
    kb.button(text="🇷🇺 Русский", callback_data=LocaleCb(locale=Locale.ru))
    kb.button(text="🇬🇧 English", callback_data=LocaleCb(locale=Locale.en))
    _back(kb, Screen.profile)
    kb.adjust(2, 1)
    return kb.as_markup()


# --- bookings -----------------------------------------------------------------------------------
def bookings_day(
    day: date, items: Sequence[Booking], zone: ZoneInfo, locale: str
) -> InlineKeyboardMarkup:
    kb = Buttons()
    for b in items:
        kb.button(
            text=f"{text.hhmm(b.starts_at.astimezone(zone))} · {b.customer_name or b.phone}"
            + (" ✖️" if b.status == "cancelled" else ""),
            callback_data=BookingAdminCb(action=BookingAction.view, booking_id=b.id),
        )
    prev_day, next_day = day - timedelta(days=1), day + timedelta(days=1)
    kb.button(
        text="« " + text.day(prev_day, locale),
        callback_data=BookingAdminCb(action=BookingAction.day, day=pack_day(prev_day)),
    )
    kb.button(text=_("Today"), callback_data=BookingAdminCb(action=BookingAction.day))
    kb.button(
        text=text.day(next_day, locale) + " »",
        callback_data=BookingAdminCb(action=BookingAction.day, day=pack_day(next_day)),
    )
    kb.button(
        text=_("📆 Another date"), callback_data=BookingAdminCb(action=BookingAction.pick_date)
    )
    kb.button(
        text=_("📄 CSV for {month}").format(month=text.month(day, locale)),
        callback_data=BookingAdminCb(action=BookingAction.csv, day=pack_day(day)),
    )
    _back(kb, Screen.home)
    kb.adjust(*([1] * len(items)), 3, 2, 1)
    return kb.as_markup()


def booking(item: Booking, day: date) -> InlineKeyboardMarkup:
    kb = Buttons()

    def button(label: str, action: BookingAction) -> None:
        kb.button(text=label, callback_data=BookingAdminCb(action=action, booking_id=item.id))

    if item.status == "confirmed":
        button(_("✅ Done"), BookingAction.done)
        button(_("🚫 No-show"), BookingAction.no_show)
        button(_("✖️ Cancel with a note"), BookingAction.cancel)
        if item.session_id is None:
            kb.button(
                text=_("🔁 Move"),
                callback_data=MoveAdminCb(step=MoveStep.start, booking_id=item.id),
            )
    elif item.status in ("done", "no_show"):
        button(_("↩️ Back to confirmed"), BookingAction.restore)
    kb.button(
        text=_("« Bookings"),
        callback_data=BookingAdminCb(action=BookingAction.day, day=pack_day(day)),
    )
    kb.adjust(2, 1, 1)
    return kb.as_markup()


# --- customers and admins -------------------------------------------------------------------------
def customers(page: int, pages: int, *, broadcasts: bool = True) -> InlineKeyboardMarkup:
    kb = Buttons()
    nav = 0
    if page > 0:
        kb.button(text="«", callback_data=CustomersCb(action=CustomersAction.page, page=page - 1))
        nav += 1
    if page + 1 < pages:
        kb.button(text="»", callback_data=CustomersCb(action=CustomersAction.page, page=page + 1))
        nav += 1
    if broadcasts:  # only when the tenant's plan includes them
        kb.button(
            text=_("📣 Broadcast"), callback_data=CustomersCb(action=CustomersAction.broadcast)
        )
    _back(kb, Screen.home)
    kb.adjust(*([nav] if nav else []), *([1] if broadcasts else []), 1)
    return kb.as_markup()


def broadcast_confirm(recipients: int) -> InlineKeyboardMarkup:
    kb = Buttons()
    kb.button(
        text=_("📣 Send to {n}").format(n=recipients),
        callback_data=CustomersCb(action=CustomersAction.send),
    )
    kb.button(text=_("✖️ Cancel"), callback_data=CustomersCb(action=CustomersAction.drop))
    kb.adjust(1)
    return kb.as_markup()


def admins(removable: Sequence[int]) -> InlineKeyboardMarkup:
    kb = Buttons()
    for user_id in removable:
        kb.button(
            text=_("✖️ Remove {id}").format(id=user_id),
            callback_data=AdminsCb(action=AdminsAction.remove, user_id=user_id),
        )
    kb.button(text=_("➕ Add an admin"), callback_data=AdminsCb(action=AdminsAction.add))
    _back(kb, Screen.settings)
    kb.adjust(1)
    return kb.as_markup()


# --- the AI assistant and leads -----------------------------------------------------------------
def assistant(enabled: bool, configured: bool) -> InlineKeyboardMarkup:
    kb = Buttons()
    if configured:
        kb.button(
            text=_("⏸ Turn off") if enabled else _("▶️ Turn on"),
            callback_data=AssistantCb(action=AssistantAction.toggle),
        )
    kb.button(text=_("✏️ FAQ"), callback_data=AssistantCb(action=AssistantAction.faq))
    kb.button(text=_("✏️ Tone"), callback_data=AssistantCb(action=AssistantAction.tone))
    _back(kb, Screen.home)
    kb.adjust(*([1] if configured else []), 2, 1)
    return kb.as_markup()


LEAD_ICONS = {"new": "🆕", "in_work": "⏳", "won": "✅", "lost": "✖️"}


def leads(items: Sequence[Lead], page: int, pages: int) -> InlineKeyboardMarkup:
    kb = Buttons()
    for lead in items:
        kb.button(
            text=f"{LEAD_ICONS.get(lead.status, '')} #{lead.id} · {lead.name}",
            callback_data=LeadCb(action=LeadAction.view, lead_id=lead.id, page=page),
        )
    nav = 0
    if page > 0:
        kb.button(text="«", callback_data=LeadCb(action=LeadAction.page, page=page - 1))
        nav += 1
    if page + 1 < pages:
        kb.button(text="»", callback_data=LeadCb(action=LeadAction.page, page=page + 1))
        nav += 1
    kb.button(text=_("📄 CSV"), callback_data=LeadCb(action=LeadAction.csv))
    _back(kb, Screen.home)
    kb.adjust(*([1] * len(items)), *([nav] if nav else []), 1, 1)
    return kb.as_markup()


def lead(item: Lead, page: int) -> InlineKeyboardMarkup:
    kb = Buttons()
    others = [s for s in LeadStatus if s.value != item.status]
    for status in others:
        kb.button(
            text=f"{LEAD_ICONS[status.value]} {lead_status_name(status.value)}",
            callback_data=LeadCb(
                action=LeadAction.status, lead_id=item.id, page=page, status=status
            ),
        )
    kb.button(
        text=_("📝 Note"), callback_data=LeadCb(action=LeadAction.note, lead_id=item.id, page=page)
    )
    kb.button(text=_("« Leads"), callback_data=LeadCb(action=LeadAction.page, page=page))
    kb.adjust(len(others), 1, 1)
    return kb.as_markup()
