"""The district's clock: local midnights, also where a clock change skips midnight."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.localtime import end_of_day, local_date, start_of_day, utc_offset_s, valid_time_zone
from app.services.fleet import certificate_expiry

pytestmark = pytest.mark.pure

XIAN = ZoneInfo("Asia/Shanghai")


def test_valid_through_a_date_ends_at_local_midnight_after_it() -> None:
    assert end_of_day(date(2026, 11, 30), XIAN) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert (
        certificate_expiry(date(2026, 11, 30), XIAN)
        == datetime(2026, 11, 30, 16, tzinfo=UTC).timestamp()
    )
    assert certificate_expiry(None, XIAN) is None


def test_the_local_date_is_not_the_utc_date() -> None:
    assert local_date(datetime(2026, 11, 30, 16, 36, tzinfo=UTC), XIAN) == date(2026, 12, 1)


def test_a_day_whose_midnight_a_clock_change_skips_starts_at_its_first_hour() -> None:
    santiago = ZoneInfo("America/Santiago")  # clocks go from 00:00 to 01:00 on 6 Sep 2026
    start = start_of_day(date(2026, 9, 6), santiago)
    assert start.astimezone(santiago).replace(tzinfo=None) == datetime(2026, 9, 6, 1)
    assert end_of_day(date(2026, 9, 5), santiago) == start


def test_the_offset_follows_the_zone_at_that_instant() -> None:
    london = ZoneInfo("Europe/London")
    assert utc_offset_s(london, datetime(2026, 1, 15, tzinfo=UTC)) == 0
    assert utc_offset_s(london, datetime(2026, 7, 15, tzinfo=UTC)) == 3600
    assert utc_offset_s(XIAN, datetime(2026, 7, 15, tzinfo=UTC)) == 8 * 3600


@pytest.mark.parametrize("name", ["Asia/Shanghai", "Asia/Urumqi", "UTC", "Europe/London"])
def test_iana_zones_are_valid(name: str) -> None:
    assert valid_time_zone(name) == name


@pytest.mark.parametrize("name", ["", "Mars/Base", "../../etc/passwd", "/etc/localtime", "+08:00"])
def test_anything_else_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="IANA"):
        valid_time_zone(name)
