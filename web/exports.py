"""CSV exports of one bot's leads, bookings and customers for the owner's web.

The same dialect as the bot's /admin exports: UTF-8 with a BOM and `;` between fields, so Excel
(whose Russian locale separates lists with `;`) opens it with Cyrillic and columns right; fields
are quoted by the csv module when they hold `;`, quotes or line breaks, and text a customer or
the model wrote never becomes a spreadsheet formula. Times are in the bot's time zone."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "leads": {
        "ru": (
            "Номер", "Создана", "Имя", "Телефон", "Интерес", "Комментарий", "Статус",
            "Взял(а)", "Telegram id", "Заметки",
        ),
        "en": (
            "Number", "Created", "Name", "Phone", "Interested in", "Comment", "Status",
            "Taken by", "Telegram id", "Notes",
        ),
    },
    "bookings": {
        "ru": (
            "Номер", "Начало", "Конец", "Услуга", "Специалист", "Имя", "Телефон", "Статус",
            "Причина отмены", "Telegram id",
        ),
        "en": (
            "Number", "Starts", "Ends", "Service", "Staff", "Name", "Phone", "Status",
            "Cancel note", "Telegram id",
        ),
    },
    "customers": {
        "ru": ("Id", "Имя", "Username", "Телефон", "Заблокировал(а) бота", "Впервые", "Был(а)"),
        "en": ("Id", "Name", "Username", "Phone", "Blocked the bot", "First seen", "Last seen"),
    },
}  # fmt: skip
STATUS_NAMES = {
    "ru": {
        "new": "новая", "in_work": "в работе", "won": "успешная", "lost": "отказ",
        "confirmed": "подтверждена", "cancelled": "отменена", "done": "пришёл",
        "no_show": "не пришёл",
    },
    "en": {
        "new": "new", "in_work": "in work", "won": "won", "lost": "lost",
        "confirmed": "confirmed", "cancelled": "cancelled", "done": "came",
        "no_show": "did not come",
    },
}  # fmt: skip
YES_NO = {"ru": ("да", "нет"), "en": ("yes", "no")}

LEADS_SQL = (
    "SELECT l.id, l.created_at, l.name, l.phone, l.interest, l.comment, l.status, l.taken_by,"
    " l.customer_id, coalesce((SELECT string_agg(n.body, E'\\n' ORDER BY n.id)"
    "  FROM lead_notes n WHERE n.lead_id = l.id), '') AS notes"
    " FROM leads l ORDER BY l.created_at, l.id"
)
BOOKINGS_SQL = (
    "SELECT b.id, b.starts_at, b.ends_at, s.name AS service, st.name AS staff, b.customer_name,"
    " b.phone, b.status, b.cancel_note, b.customer_id"
    " FROM bookings b JOIN services s ON s.id = b.service_id"
    " LEFT JOIN staff st ON st.id = b.staff_id ORDER BY b.starts_at, b.id"
)
CUSTOMERS_SQL = (
    "SELECT telegram_id, first_name, username, phone, blocked_at IS NOT NULL AS blocked,"
    " created_at, last_seen_at FROM customers ORDER BY created_at, telegram_id"
)


def safe(value: object) -> str:
    """A cell: None is empty; text starting like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not text[1:2].isdigit():
        return "'" + text
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([safe(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


async def export(pool: asyncpg.Pool, what: str, zone: ZoneInfo, lang: str) -> bytes:
    """One table of the tenant (through its own pool) as CSV."""
    names = STATUS_NAMES[lang]
    if what == "leads":
        rows = await pool.fetch(LEADS_SQL)
        body: list[list[object]] = [
            [
                r["id"], _local(r["created_at"], zone), r["name"], r["phone"], r["interest"],
                r["comment"], names[r["status"]], r["taken_by"], r["customer_id"], r["notes"],
            ]
            for r in rows
        ]  # fmt: skip
    elif what == "bookings":
        rows = await pool.fetch(BOOKINGS_SQL)
        body = [
            [
                r["id"], _local(r["starts_at"], zone), _local(r["ends_at"], zone), r["service"],
                r["staff"], r["customer_name"], r["phone"], names.get(r["status"], r["status"]),
                r["cancel_note"], r["customer_id"],
            ]
            for r in rows
        ]  # fmt: skip
    elif what == "customers":
        rows = await pool.fetch(CUSTOMERS_SQL)
        yes, no = YES_NO[lang]
        body = [
            [
                r["telegram_id"], r["first_name"], r["username"], r["phone"],
                yes if r["blocked"] else no, _local(r["created_at"], zone),
                _local(r["last_seen_at"], zone),
            ]
            for r in rows
        ]  # fmt: skip
    else:
        raise ValueError(what)
    return to_csv(HEADERS[what][lang], body)
