"""Pure schedule maths: dose dates, local wall-clock times in IANA zones, windows, quiet hours.

Nothing here touches a database, the clock or the network; every "now" is an argument.
Wall-clock local time is what stays fixed for a participant: a nonexistent local time
(spring-forward gap) moves forward by the gap, an ambiguous one (fall-back) takes the first
occurrence.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "add_months",
    "dose_dates",
    "dose_window",
    "in_quiet_hours",
    "is_valid_zone",
    "load_zone",
    "local_wall_to_utc",
    "next_allowed_send",
    "to_local",
    "treatment_end",
]

UTC = timezone.utc

# Keys that zoneinfo can load but that name no place a participant lives in: "localtime" is
# the host's own setting (differs between machines), "Factory" is tzdata's "-00" placeholder.
_NOT_A_PLACE = frozenset({"localtime", "Factory", "posixrules"})


def _require_date(value: date, name: str) -> None:
    # datetime subclasses date; letting one through would silently return datetimes.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")


def _require_naive_time(value: time, name: str) -> None:
    # A wall-clock time only means something together with the zone argument.
    if not isinstance(value, time):
        raise TypeError(f"{name} must be a datetime.time, got {type(value).__name__}")
    if value.tzinfo is not None:
        raise ValueError(f"{name} must be a naive wall-clock time; the zone is a separate argument")


def _require_aware(instant: datetime, name: str = "instant") -> None:
    if not isinstance(instant, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _days_in_month(year: int, month: int) -> int:
    # Not stdlib `calendar`: this module's own name shadows it when the package dir is on sys.path.
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def add_months(d: date, months: int) -> date:
    """Return the same day `months` calendar months later, clamped to that month's last day."""
    _require_date(d, "d")
    month_index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(month_index, 12)
    if not date.min.year <= year <= date.max.year:
        raise OverflowError(f"{d.isoformat()} + {months} months is outside the supported range")
    return date(year, month0 + 1, min(d.day, _days_in_month(year, month0 + 1)))


def treatment_end(first_dose: date, *, months: int) -> date:
    """Return the exclusive end of treatment: `first_dose` plus `months` calendar months."""
    if months < 1:
        raise ValueError(f"treatment must last at least one month, got {months}")
    return add_months(first_dose, months)


def dose_dates(
    first_dose: date,
    *,
    interval_days: int,
    months: int,
    start: date | None = None,
    end: date | None = None,
) -> list[date]:
    """Return dates every `interval_days` from `start` (default first dose), strictly before `end`."""
    _require_date(first_dose, "first_dose")
    if interval_days < 1:
        raise ValueError(f"interval_days must be at least 1, got {interval_days}")
    start = first_dose if start is None else start
    end = treatment_end(first_dose, months=months) if end is None else end
    _require_date(start, "start")
    _require_date(end, "end")
    if start < first_dose:
        # A resume date before the first dose means the caller mixed up participants or dates.
        raise ValueError(f"start {start.isoformat()} is before first dose {first_dose.isoformat()}")
    span = (end - start).days
    if span <= 0:
        return []
    step = timedelta(days=interval_days)
    count = -(-span // interval_days)
    return [start + step * i for i in range(count)]


@functools.cache
def _known_zone_keys() -> frozenset[str]:
    # Walking the tz database takes ~50 ms; the set only changes with a tzdata upgrade,
    # which comes with a restart.
    return frozenset(available_timezones()) - _NOT_A_PLACE


def is_valid_zone(zone: str) -> bool:
    """Return True only for a real IANA zone name that zoneinfo can load."""
    if not isinstance(zone, str) or not zone or zone not in _known_zone_keys():
        return False
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def load_zone(zone: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA zone name, or raise ValueError for anything else."""
    if not is_valid_zone(zone):
        raise ValueError(f"unknown IANA time zone: {zone!r}")
    return ZoneInfo(zone)


def local_wall_to_utc(day: date, at: time, zone: str) -> datetime:
    """Return the UTC instant of local wall time `at` on `day` in `zone` (gaps move forward, folds take the first)."""
    _require_date(day, "day")
    _require_naive_time(at, "at")
    # PEP 495: fold=0 resolves an ambiguous time to its first occurrence and a nonexistent
    # time with the offset in force before the gap, which lands exactly one gap-length later.
    local = datetime.combine(day, at.replace(fold=0), tzinfo=load_zone(zone))
    return local.astimezone(UTC)


def to_local(instant: datetime, zone: str) -> datetime:
    """Return the aware local datetime in `zone` for an aware instant."""
    _require_aware(instant)
    return instant.astimezone(load_zone(zone))


def dose_window(
    day: date, zone: str, *, opens_at: time, closes_at: time, closes_day_offset: int
) -> tuple[datetime, datetime]:
    """Return (opens_utc, closes_utc) for the dose on `day`, closing `closes_day_offset` days later."""
    opens = local_wall_to_utc(day, opens_at, zone)
    closes = local_wall_to_utc(day + timedelta(days=closes_day_offset), closes_at, zone)
    if closes <= opens:
        raise ValueError("dose window must close after it opens")
    return opens, closes


def in_quiet_hours(local: time, *, start: time, end: time) -> bool:
    """Return True if wall time `local` is in quiet hours [start, end), which may cross midnight."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _wall_occurrences(day: date, at: time, tz: ZoneInfo) -> list[datetime]:
    """UTC instants that local wall time `at` on `day` maps to (a moved-forward one in a gap)."""
    first = datetime.combine(day, at.replace(fold=0), tzinfo=tz).astimezone(UTC)
    second = datetime.combine(day, at.replace(fold=1), tzinfo=tz).astimezone(UTC)
    wall = datetime.combine(day, at)
    # Only in a fall-back fold does the second resolution also read back as the same wall time.
    if second != first and second.astimezone(tz).replace(tzinfo=None) == wall:
        return [first, second]
    return [first]


def _next_wall_time_after(instant: datetime, at: time, tz: ZoneInfo) -> datetime:
    """Earliest UTC instant after `instant` at which the local clock in `tz` shows `at`."""
    today = instant.astimezone(tz).date()
    candidates = (
        utc
        for offset in (-1, 0, 1, 2)
        for utc in _wall_occurrences(today + timedelta(days=offset), at, tz)
        if utc > instant
    )
    return min(candidates)


def next_allowed_send(instant: datetime, zone: str, *, quiet_start: time, quiet_end: time) -> datetime:
    """`instant` (as UTC) if outside quiet hours in `zone`, else the UTC instant of the next local `quiet_end`."""
    _require_aware(instant)
    _require_naive_time(quiet_start, "quiet_start")
    _require_naive_time(quiet_end, "quiet_end")
    tz = load_zone(zone)
    candidate = instant.astimezone(UTC)
    # One step almost always suffices; more are needed only when quiet_end itself falls in a
    # DST gap that pushes it back into quiet hours, so bound the loop rather than trust it.
    for _ in range(8):
        if not in_quiet_hours(candidate.astimezone(tz).time(), start=quiet_start, end=quiet_end):
            return candidate
        candidate = _next_wall_time_after(candidate, quiet_end, tz)
    raise RuntimeError(f"no time outside quiet hours found near {instant.isoformat()} in {zone}")
