"""Translations, dates and times in the reader's language: flask_babel's, but fast.

flask_babel finds the request's catalogue anew for every message: about ten lookups through
Flask's context proxies, some 5 µs; "Mina uppgifter" translates over 250 messages and labels.
`catalogue()` keeps the catalogue on flask_babel's own per-request state, next to the locale it
belongs to, so `force_locale` (mails rendered in the recipient's language) is still obeyed;
`gettext`, `ngettext` and `lazy_gettext` here are flask_babel's with that lookup.

Pages such as "Mina uppgifter" also show dozens of timestamps. Babel's `format_datetime` looks up the
locale's pattern, parses it and fetches each field's locale data (month names and so on) every
time: about 20 µs a value, a millisecond and more of such a page. Here each (locale, format) is
compiled once into a %-template and one small function per field; fields without a fast
function (time-zone names, day periods) are still Babel's. The output is Babel's, character for
character (tests/test_i18n.py compares them over two years of hours, in both languages).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel import dates as babel_dates
from babel.support import NullTranslations
from flask import g
from flask_babel import get_locale, get_timezone, get_translations
from flask_babel.speaklater import LazyString

_NO_CATALOGUE = NullTranslations()


def catalogue():
    """The translations of the current locale (untranslated outside an app context)."""
    try:
        state_holder = g._get_current_object()
    except RuntimeError:
        return _NO_CATALOGUE
    state = getattr(state_holder, "_flask_babel", None)
    locale = getattr(state, "babel_locale", None)
    if locale is None:
        locale = get_locale()  # chooses the locale and keeps it on flask_babel's state
        state = state_holder._flask_babel
    cached = getattr(state, "portal_catalogue", None)
    if cached is None or cached[0] is not locale:
        cached = state.portal_catalogue = (locale, get_translations())
    return cached[1]


def gettext(string: str, **variables) -> str:
    translated = catalogue().gettext(string)
    return translated % variables if variables else translated


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    variables.setdefault("num", num)
    return catalogue().ngettext(singular, plural, num) % variables


def lazy_gettext(string: str, **variables) -> LazyString:
    return LazyString(gettext, string, **variables)


def install(app) -> None:
    """Templates translate through `catalogue()` (after flask_babel's init_app)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: catalogue().gettext(s),
        ngettext=lambda s, p, n: catalogue().ngettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: catalogue().pgettext(c, s),
        npgettext=lambda c, s, p, n: catalogue().npgettext(c, s, p, n))

_NAMED = ("full", "long", "medium", "short")


def _two(number: int) -> str:
    return f"{number:02d}"


def _hour12(value) -> int:
    return value.hour % 12 or 12


# Fields as Babel writes them (babel.dates.DateTimeFormat), for the letters our locales use.
_FIELDS = {
    "d": lambda p, v: str(v.day), "dd": lambda p, v: _two(v.day),
    "M": lambda p, v: str(v.month), "MM": lambda p, v: _two(v.month),
    "MMM": lambda p, v: p.months["format"]["abbreviated"][v.month],
    "MMMM": lambda p, v: p.months["format"]["wide"][v.month],
    "LLL": lambda p, v: p.months["stand-alone"]["abbreviated"][v.month],
    "LLLL": lambda p, v: p.months["stand-alone"]["wide"][v.month],
    "y": lambda p, v: str(v.year), "yyyy": lambda p, v: f"{v.year:04d}",
    "yy": lambda p, v: _two(v.year % 100),
    "H": lambda p, v: str(v.hour), "HH": lambda p, v: _two(v.hour),
    "h": lambda p, v: str(_hour12(v)), "hh": lambda p, v: _two(_hour12(v)),
    "m": lambda p, v: str(v.minute), "mm": lambda p, v: _two(v.minute),
    "s": lambda p, v: str(v.second), "ss": lambda p, v: _two(v.second),
}


class _Compiled:
    """One Babel pattern of one locale, as a %-template and a function per field."""

    def __init__(self, pattern: str, locale: Locale) -> None:
        parsed = babel_dates.parse_pattern(pattern)
        self.template = parsed.format
        self.locale = locale
        self.months = locale.months
        self.fields = [(key, _FIELDS.get(key)) for key in _keys(parsed)]

    def __call__(self, value) -> str:
        values, slow = {}, None
        for key, field in self.fields:
            if field is not None:
                values[key] = field(self, value)
            else:  # a field Babel must write (e.g. "z", "a")
                slow = slow or babel_dates.DateTimeFormat(value, self.locale)
                values[key] = slow[key]
        return self.template % values


def _keys(parsed) -> list[str]:
    return list(dict.fromkeys(re.findall(r"%\((\w+)\)s", parsed.format)))


@lru_cache(maxsize=64)
def _datetime_formatter(locale_id: str, fmt: str):
    locale = Locale.parse(locale_id)
    if fmt not in _NAMED:
        return _Compiled(fmt, locale)
    # As babel.dates.format_datetime: the locale's "{1} {0}" with the date and time patterns.
    date_part = _Compiled(locale.date_formats[fmt].pattern, locale)
    time_part = _Compiled(locale.time_formats[fmt].pattern, locale)
    joined = babel_dates.get_datetime_format(fmt, locale=locale).replace("'", "")
    return lambda value: joined.replace("{0}", time_part(value)).replace("{1}", date_part(value))


@lru_cache(maxsize=64)
def _date_formatter(locale_id: str, fmt: str) -> _Compiled:
    locale = Locale.parse(locale_id)
    pattern = locale.date_formats[fmt].pattern if fmt in _NAMED else fmt
    return _Compiled(pattern, locale)


@lru_cache(maxsize=16)
def _zone(tz) -> ZoneInfo:
    """flask_babel's pytz zone as a ZoneInfo: the same rules, converted four times faster."""
    return ZoneInfo(str(tz))


def format_datetime(value: datetime | None, fmt: str = "medium") -> str:
    """`value` in the request's time zone and language ("" for None); naive means UTC."""
    if not value:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return _datetime_formatter(str(get_locale()), fmt)(value.astimezone(_zone(get_timezone())))


def format_date(value: date | datetime | None, fmt: str = "long") -> str:
    """A date in the request's language ("" for None); a datetime is first moved to the
    request's time zone, as flask_babel does."""
    if not value:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(_zone(get_timezone()))
    return _date_formatter(str(get_locale()), fmt)(value)
