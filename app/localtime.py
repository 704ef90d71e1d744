"""The district's clock: IANA time zones, local dates and local midnights.

Storage and the API keep timezone-aware UTC; a *day* (a certificate's last valid date, "today",
a daily visit cap) is a date in the district's own zone. Zones come from the IANA database that
ships with Python's ``tzdata`` package (a pinned dependency), so a container without the
system's zoneinfo files knows them too.
"""

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_TIME_ZONE = "Asia/Shanghai"


@cache
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_time_zone(name: str) -> str:
    """``name`` if it is an IANA zone (``Asia/Shanghai``, ``UTC``); ValueError otherwise.

    Checked against the list of known zones first, so that a client's string never reaches
    the file system (``ZoneInfo`` reads a file named after the key).
    """
    if name not in _known():
        raise ValueError(f"{name!r} is not an IANA time zone (for example {DEFAULT_TIME_ZONE!r})")
    return name


def zone(name: str) -> ZoneInfo:
    """The zone named ``name`` (validated; ValueError if unknown)."""
    return ZoneInfo(valid_time_zone(name))


def local_date(at: datetime, tz: ZoneInfo) -> date:
    """The date it is in ``tz`` at the instant ``at``."""
    return at.astimezone(tz).date()


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) of ``day`` in ``tz``: local midnight, or the first valid local
    time after it where a DST change skips midnight."""
    naive = datetime.combine(day, time())
    local = naive.replace(tzinfo=tz)
    # A skipped local time does not round-trip through UTC: step to the first one that does.
    while local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        naive += timedelta(minutes=15)
        local = naive.replace(tzinfo=tz)
    return local.astimezone(UTC)


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) after ``day`` in ``tz``: "valid through ``day``" ends here."""
    return start_of_day(day + timedelta(days=1), tz)


def utc_offset_s(tz: ZoneInfo, at: datetime) -> float:
    """Seconds east of UTC in ``tz`` at the instant ``at``."""
    offset = at.astimezone(tz).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0
