"""Holidays of a calendar: listed dates, and the public holidays of countries and regions.

A schedule's ``holidays`` mixes ``"YYYY-MM-DD"`` dates with :class:`CountryHolidays`
(``country("DE", subdiv="BE")``): the holidays of a country or one of its subdivisions
(state, province, canton), as the `holidays <https://pypi.org/project/holidays/>`_
package on PyPI knows them, for every year. Which days they are is decided by that
package's version: a newly legislated holiday arrives with an upgrade, as it does in
Airflow's and Prefect's holiday timetables.

:class:`Holidays` answers ``day in holidays`` for a schedule; it is built once per
schedule, and a country's calendar once per process.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from holidays import HolidayBase

__all__ = ["CountryHolidays", "HolidayEntry", "Holidays", "country"]


class CountryHolidays(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The public holidays of a country, or of one of its subdivisions.

    Attributes:
        country: ISO 3166-1 alpha-2 code (``"DE"``, ``"US"``, ``"GB"``).
        subdiv: A subdivision's code in that country (``"BE"`` for Berlin, ``"NY"``);
            none: the holidays of the whole country.
        categories: Holiday categories of the ``holidays`` package (``"public"``,
            ``"bank"``, ``"catholic"``, ...); empty: the country's public holidays.
    """

    country: str
    subdiv: str | None = None
    categories: list[str] = msgspec.field(default_factory=list)

    def describe(self) -> str:
        """``DE-BE``, ``US``, ``DE (public, catholic)``."""
        name = f"{self.country}-{self.subdiv}" if self.subdiv else self.country
        return f"{name} ({', '.join(self.categories)})" if self.categories else name


HolidayEntry = str | CountryHolidays
"""One entry of a schedule's ``holidays``: a local date, or a country's calendar."""


def country(
    code: str, *, subdiv: str | None = None, categories: Iterable[str] = ()
) -> CountryHolidays:
    """The holidays of a country or region, for ``deadline(..., holidays=...)``.

    ``country("DE", subdiv="BE")`` is Berlin's public holidays;
    ``holidays=[country("GB", subdiv="ENG"), "2026-12-24"]`` adds a company day.
    """
    if not isinstance(code, str):
        raise TypeError(f"country(): code must be a string like 'DE', not {code!r}")
    if subdiv is not None and not isinstance(subdiv, str):
        raise TypeError(f"country(): subdiv must be a string like 'BE', not {subdiv!r}")
    if isinstance(categories, str):
        categories = (categories,)
    return CountryHolidays(country=code, subdiv=subdiv, categories=list(categories))


class Holidays:
    """The days of a schedule on which no deadline falls: ``day in holidays``."""

    __slots__ = ("_lookups", "calendars", "dates")

    def __init__(self, entries: Collection[HolidayEntry | date]) -> None:
        if isinstance(entries, str | CountryHolidays):
            entries = (entries,)
        dates: set[date] = set()
        calendars: list[CountryHolidays] = []
        for entry in entries:
            if isinstance(entry, CountryHolidays):
                if entry not in calendars:
                    calendars.append(entry)
            else:
                dates.add(_date(entry))
        self.dates = frozenset(dates)
        self.calendars = tuple(calendars)
        self._lookups = tuple(_calendar(entry) for entry in calendars)

    def __contains__(self, day: object) -> bool:
        return day in self.dates or any(day in lookup for lookup in self._lookups)

    def stored(self) -> tuple[HolidayEntry, ...]:
        """The entries as a rule stores them: dates sorted, then the calendars in order."""
        return (*(day.isoformat() for day in sorted(self.dates)), *self.calendars)

    def describe(self) -> str:
        """``", except DE-BE's holidays and 2 dates"`` (empty without holidays)."""
        parts = [f"{entry.describe()}'s holidays" for entry in self.calendars]
        if self.dates:
            count = len(self.dates)
            parts.append(f"{count} {'date' if self.calendars else 'holiday'}{'s' * (count != 1)}")
        return f", except {' and '.join(parts)}" if parts else ""


def _date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(value)  # type: ignore[arg-type]  # not a str: TypeError
    except (TypeError, ValueError):
        raise ValueError(
            f"holiday {value!r} is not a date (use 'YYYY-MM-DD', e.g. '2026-12-25')"
        ) from None


def _calendar(entry: CountryHolidays) -> HolidayBase:
    return _country_calendar(entry.country, entry.subdiv, tuple(entry.categories))


@cache
def _country_calendar(code: str, subdiv: str | None, categories: tuple[str, ...]) -> HolidayBase:
    import holidays  # noqa: PLC0415 - 0.2 s to import: only for rules that name a country

    supported = holidays.list_supported_countries(include_aliases=False)
    if code not in supported:
        close = difflib.get_close_matches(code.upper(), supported, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use an ISO 3166-1 code, e.g. 'DE'"
        raise ValueError(f"no holiday calendar for country {code!r} ({hint})")
    if subdiv is not None and subdiv not in supported[code]:
        known = ", ".join(supported[code]) or "none"
        raise ValueError(
            f"country {code!r} has no subdivision {subdiv!r} (its subdivisions: {known})"
        )
    try:
        return holidays.country_holidays(code, subdiv=subdiv, categories=categories or None)
    except (ValueError, NotImplementedError) as exc:  # an unknown category
        raise ValueError(f"holidays of {code!r}: {exc}") from None
