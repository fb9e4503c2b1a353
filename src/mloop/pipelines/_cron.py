"""A small cron matcher: five-field expressions evaluated in UTC.

mloop's own implementation (no dependency): ``minute hour day-of-month month
day-of-week`` with ``*``, lists, ranges, steps (``*/15``, ``1-5/2``), month and day
names, and the ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly`` shortcuts.
As in Vixie cron, when both day fields are restricted a day matches if either does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mloop.errors import InvalidInput

__all__ = ["CronSchedule"]

_SHORTCUTS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, low, high, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_SEARCH_DAYS = 366 * 5  # a valid expression matches within five years (Feb 29)


def _value(text: str, low: int, high: int, names: dict[str, int], field: str, expr: str) -> int:
    token = text.lower()
    value = names.get(token)
    if value is None:
        try:
            value = int(token)
        except ValueError:
            raise InvalidInput(
                f"Cron expression {expr!r}: {text!r} is not a valid {field} "
                f"(use {low}-{high}{' or a name' if names else ''})."
            ) from None
    if not low <= value <= high:
        raise InvalidInput(f"Cron expression {expr!r}: {field} {value} is outside {low}-{high}.")
    return value


def _parse_field(
    text: str, low: int, high: int, names: dict[str, int], field: str, expr: str
) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise InvalidInput(f"Cron expression {expr!r}: step {step_text!r} in {field}.")
            step = int(step_text)
        if body == "*":
            start, stop = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start = _value(a, low, high, names, field, expr)
            stop = _value(b, low, high, names, field, expr)
            if start > stop:
                raise InvalidInput(f"Cron expression {expr!r}: range {body!r} runs backwards.")
        else:
            start = _value(body, low, high, names, field, expr)
            stop = high if step_text else start
        out.update(range(start, stop + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression; ``matches`` and ``previous``/``next`` work in UTC epoch seconds."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """Parse ``"*/15 * * * *"``, ``"0 3 * * mon-fri"`` or ``"@daily"``."""
        text = _SHORTCUTS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise InvalidInput(
                f"Cron expression {expression!r} needs 5 fields (minute hour day month weekday), "
                f"e.g. '0 3 * * *' for 03:00 UTC daily; got {len(parts)}."
            )
        sets = [
            _parse_field(p, lo, hi, names, name, expression)
            for p, (name, lo, hi, names) in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in sets[4])  # 7 is Sunday too
        return cls(
            expression=expression,
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            days_restricted=parts[2] != "*",
            weekdays_restricted=parts[4] != "*",
        )

    def _day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def matches(self, ts: float) -> bool:
        """True when the minute containing ``ts`` is a scheduled minute."""
        moment = dt.datetime.fromtimestamp(ts, dt.UTC)
        return (
            self._day_matches(moment.date())
            and moment.hour in self.hours
            and moment.minute in self.minutes
        )

    def previous(self, ts: float) -> float | None:
        """The latest scheduled minute at or before ``ts`` (epoch seconds), if any in 5 years."""
        moment = dt.datetime.fromtimestamp(ts, dt.UTC).replace(second=0, microsecond=0)
        day = moment.date()
        for offset in range(_SEARCH_DAYS):
            current = day - dt.timedelta(days=offset)
            if not self._day_matches(current):
                continue
            last_hour = moment.hour if offset == 0 else 23
            for hour in sorted((h for h in self.hours if h <= last_hour), reverse=True):
                last_minute = moment.minute if offset == 0 and hour == moment.hour else 59
                found = [m for m in self.minutes if m <= last_minute]
                if found:
                    at = dt.datetime(current.year, current.month, current.day, hour, max(found))
                    return at.replace(tzinfo=dt.UTC).timestamp()
        return None

    def next(self, ts: float) -> float | None:
        """The earliest scheduled minute strictly after ``ts`` (epoch seconds)."""
        moment = dt.datetime.fromtimestamp(ts, dt.UTC).replace(second=0, microsecond=0)
        day = moment.date()
        for offset in range(_SEARCH_DAYS):
            current = day + dt.timedelta(days=offset)
            if not self._day_matches(current):
                continue
            first_hour = moment.hour if offset == 0 else 0
            for hour in sorted(h for h in self.hours if h >= first_hour):
                first_minute = moment.minute + 1 if offset == 0 and hour == moment.hour else 0
                found = [m for m in self.minutes if m >= first_minute]
                if found:
                    at = dt.datetime(current.year, current.month, current.day, hour, min(found))
                    return at.replace(tzinfo=dt.UTC).timestamp()
        return None
