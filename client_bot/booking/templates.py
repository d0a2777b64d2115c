"""A new business's starting point, by the category the owner picked in the sales bot
(`BUSINESS_CATEGORY`): example services, typical weekly hours and, for classes, a weekly
timetable, in the business's language. Also reading several weekdays' hours typed at once
("Пн–Пт 10:00–20:00, Сб 11:00–17:00").

Pure stdlib: no Telegram or database imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ServiceTemplate:
    name: str
    price: Decimal
    duration_min: int
    description: str = ""
    capacity: int | None = None  # a group class with this many seats
    timetable: tuple[tuple[int, time], ...] = ()  # (weekday, start) of a class's sessions


@dataclass(frozen=True, slots=True)
class BusinessTemplate:
    staff_name: str  # the first staff member's name, when it is still the default one
    hours: tuple[tuple[tuple[int, ...], time, time], ...]  # (weekdays, opens, closes)
    breaks: tuple[tuple[tuple[int, ...], time, time], ...]
    services: tuple[ServiceTemplate, ...]


WEEKDAYS = (0, 1, 2, 3, 4)
MON_SAT = (0, 1, 2, 3, 4, 5)
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)


@dataclass(frozen=True, slots=True)
class _Svc:
    ru: str
    en: str
    price: int
    minutes: int
    capacity: int | None = None
    timetable: tuple[tuple[int, time], ...] = ()


@dataclass(frozen=True, slots=True)
class _Preset:
    staff: tuple[str, str]  # ru, en
    hours: tuple[tuple[tuple[int, ...], time, time], ...]
    breaks: tuple[tuple[tuple[int, ...], time, time], ...]
    services: tuple[_Svc, ...]


_PRESETS = {
    "beauty": _Preset(
        ("Мастер", "Stylist"),
        ((EVERY_DAY, time(10), time(20)),),
        (),
        (
            _Svc("Стрижка", "Haircut", 1500, 60),
            _Svc("Окрашивание", "Hair colouring", 3500, 120),
            _Svc("Маникюр", "Manicure", 1500, 90),
        ),
    ),
    "health": _Preset(
        ("Специалист", "Specialist"),
        ((WEEKDAYS, time(9), time(20)), ((5,), time(10), time(16))),
        ((WEEKDAYS, time(13), time(14)),),
        (
            _Svc("Первичная консультация", "First consultation", 2000, 30),
            _Svc("Массаж спины", "Back massage", 2500, 60),
            _Svc("Повторный приём", "Follow-up visit", 1500, 30),
        ),
    ),
    "fitness": _Preset(
        ("Тренер", "Coach"),
        ((EVERY_DAY, time(8), time(22)),),
        (),
        (
            _Svc(
                "Групповая йога",
                "Group yoga",
                600,
                60,
                capacity=12,
                timetable=((0, time(19)), (2, time(19)), (4, time(19)), (5, time(11))),
            ),
            _Svc("Персональная тренировка", "Personal training", 2000, 60),
        ),
    ),
    "education": _Preset(
        ("Преподаватель", "Teacher"),
        ((WEEKDAYS, time(10), time(20)), ((5,), time(10), time(16))),
        (),
        (
            _Svc("Пробное занятие", "Trial lesson", 0, 30),
            _Svc("Индивидуальное занятие", "Private lesson", 1500, 60),
        ),
    ),
    "auto": _Preset(
        ("Мастер", "Mechanic"),
        ((MON_SAT, time(9), time(20)),),
        (),
        (
            _Svc("Замена масла", "Oil change", 1500, 60),
            _Svc("Шиномонтаж", "Tyre change", 2500, 60),
            _Svc("Диагностика", "Diagnostics", 1500, 60),
        ),
    ),
    "other": _Preset(
        ("Специалист", "Specialist"),
        ((WEEKDAYS, time(10), time(19)),),
        (),
        (_Svc("Консультация", "Consultation", 1000, 60),),
    ),
}


def business_template(category: str, locale: str) -> BusinessTemplate | None:
    """The starting point of a business of `category` in `locale` ("ru" or "en"); None for
    an empty or unknown category (nothing is seeded)."""
    preset = _PRESETS.get(category)
    if preset is None:
        return None
    en = locale == "en"
    return BusinessTemplate(
        staff_name=preset.staff[1] if en else preset.staff[0],
        hours=preset.hours,
        breaks=preset.breaks,
        services=tuple(
            ServiceTemplate(
                name=svc.en if en else svc.ru,
                price=Decimal(svc.price),
                duration_min=svc.minutes,
                capacity=svc.capacity,
                timetable=svc.timetable,
            )
            for svc in preset.services
        ),
    )


# --- several weekdays at once -------------------------------------------------------------------
_DAY_NAMES = {
    0: ("пн", "понедельник", "mon", "monday", "mo"),
    1: ("вт", "вторник", "tue", "tues", "tuesday", "tu"),
    2: ("ср", "среда", "wed", "wednesday", "we"),
    3: ("чт", "четверг", "thu", "thur", "thurs", "thursday", "th"),
    4: ("пт", "пятница", "fri", "friday", "fr"),
    5: ("сб", "суббота", "sat", "saturday", "sa"),
    6: ("вс", "воскресенье", "sun", "sunday", "su"),
}
_DAY_BY_NAME = {name: wd for wd, names in _DAY_NAMES.items() for name in names}
_DAY = r"[a-zа-яё]+\.?"
_DAY_RANGE = rf"{_DAY}(?:\s*[-–—]\s*{_DAY})?"
# Day groups open each part: at the start or after a separator, then the rest up to the next.
_GROUP = re.compile(rf"(?:^|(?<=[,;\n]))\s*({_DAY_RANGE}(?:\s*,\s*{_DAY_RANGE})*)\s*:?", re.I)
CLOSED_WORDS = frozenset({"-", "—", "–", "выходной", "выходные", "закрыто", "closed", "off"})


class WeekInputError(ValueError):
    """`args[0]` is a reason code: "no_days" (nothing that names a weekday), "day" (an unknown
    day name, in `args[1]`), "hours" (a part without hours, its days in `args[1]`)."""


def _weekday(name: str) -> int:
    key = name.lower().rstrip(".")
    if key not in _DAY_BY_NAME:
        raise WeekInputError("day", name)
    return _DAY_BY_NAME[key]


def _days(group: str) -> list[int]:
    days: list[int] = []
    for part in re.split(r"\s*,\s*", group.strip()):
        ends = re.split(r"\s*[-–—]\s*", part)
        first = _weekday(ends[0])
        last = _weekday(ends[-1])
        span = [(first + i) % 7 for i in range((last - first) % 7 + 1)]
        days.extend(d for d in span if d not in days)
    return days


def split_week(raw: str) -> list[tuple[list[int], str]]:
    """ "Пн–Пт 10:00–20:00, Сб 11:00–17:00; Вс -" -> [([0..4], "10:00–20:00"), ([5], ...),
    ([6], "-")]: the weekdays of each part (ranges wrap: "Сб-Пн" is Sat, Sun, Mon) and its hours
    text, still to be read as intervals ("-" or "выходной" = closed). Later parts win."""
    matches = [m for m in _GROUP.finditer(raw) if re.search(r"[a-zа-яё]", m.group(1), re.I)]
    # A word inside the hours ("выходной") is not a day group: keep only groups of day names.
    groups = []
    for m in matches:
        try:
            groups.append((m, _days(m.group(1))))
        except WeekInputError:
            if m.group(1).strip().lower().rstrip(".") in CLOSED_WORDS:
                continue
            raise
    if not groups:
        raise WeekInputError("no_days")
    if raw[: groups[0][0].start()].strip(" ,;\n"):
        raise WeekInputError("no_days")
    parts: list[tuple[list[int], str]] = []
    for i, (m, days) in enumerate(groups):
        end = groups[i + 1][0].start() if i + 1 < len(groups) else len(raw)
        hours = raw[m.end() : end].strip().strip(",;").strip()
        if not hours:
            raise WeekInputError("hours", m.group(1).strip())
        parts.append((days, hours))
    return parts
