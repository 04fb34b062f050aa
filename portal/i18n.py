"""Translations, dates and times in the reader's language: flask_babel's, but fast.

flask_babel finds the request's catalogue, locale and time zone anew for every message and
every date: about ten lookups through Flask's context proxies, some 5 µs each time; "Mina
uppgifter" translates over 250 messages and labels. `_current()` keeps them on flask_babel's own
per-request state, next to the locale object they belong to, so `force_locale` (mails rendered
in the recipient's language) and `refresh()` are still obeyed; `gettext`, `ngettext` and
`lazy_gettext` here are flask_babel's with that lookup.

Such pages also show dozens of timestamps. Babel's `format_datetime` looks up the locale's
pattern, parses it and fetches each field's locale data (month names and so on) every time:
about 20 µs a value. Here each (locale, format) is compiled once into one str.format template
(the numbers as format fields, month names through a dict); fields without a fast way
(time-zone names, weekdays, day periods) are still Babel's. The output is Babel's, character
for character (tests/test_i18n.py compares them over two years of hours, in both languages).
"""
from __future__ import annotations

import re
import weakref
from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel import dates as babel_dates
from babel.support import NullTranslations
from flask import g
from flask.templating import Environment as FlaskEnvironment
from flask_babel import get_locale, get_timezone, get_translations
from flask_babel.speaklater import LazyString
from jinja2 import nodes
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

_NO_CATALOGUE = NullTranslations()


class _Current:
    """What flask_babel chose for this request, looked up once: kept on flask_babel's own
    per-request state beside the locale object it belongs to."""

    __slots__ = ("locale", "translations", "locale_id", "zone")

    def __init__(self, locale) -> None:
        self.locale = locale
        self.translations = get_translations()
        self.locale_id = str(locale)
        self.zone = _zone(get_timezone())


def _current() -> _Current | None:
    try:
        state_holder = g._get_current_object()
    except RuntimeError:
        return None  # no app context
    state = getattr(state_holder, "_flask_babel", None)
    locale = getattr(state, "babel_locale", None)
    if locale is None:
        locale = get_locale()  # chooses the locale and keeps it on flask_babel's state
        state = state_holder._flask_babel
    current = getattr(state, "portal_current", None)
    if current is None or current.locale is not locale:  # force_locale, refresh()
        current = state.portal_current = _Current(locale)
    return current


def locale_id() -> str | None:
    """The current language's identifier ("sv", "en"); None outside an app context."""
    current = _current()
    return None if current is None else current.locale_id


def catalogue():
    """The translations of the current locale (untranslated outside an app context)."""
    current = _current()
    return _NO_CATALOGUE if current is None else current.translations


def gettext(string: str, **variables) -> str:
    translated = catalogue().gettext(string)
    return translated % variables if variables else translated


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    variables.setdefault("num", num)
    return catalogue().ngettext(singular, plural, num) % variables


def lazy_gettext(string: str, **variables) -> LazyString:
    return LazyString(gettext, string, **variables)


class TranslatingEnvironment(FlaskEnvironment):
    """Flask's template environment, compiling each template once per language with its
    constant messages already translated.

    `{{ _("Time") }}` in a page is a call at every rendering (through Jinja's context and the
    i18n wrappers, some 4 µs), and a page has dozens. A message without variables is the same
    text every time in a given language, so here it is translated when the template is
    compiled and becomes part of the template's static text: the compiled template is cached
    per (name, language). Messages with variables, plurals, and templates that name something
    `_` or `gettext` themselves or switch autoescaping are left to the runtime calls. The
    result is what the runtime call would give, character for character (the newstyle
    gettext's Markup and `%` formatting included); tests/test_i18n.py renders pages both ways.
    """

    fold_translations = True

    def _load_template(self, name, globals):  # noqa: A002 - Jinja's signature
        current = _current() if self.fold_translations else None
        if current is None or self.cache is None:
            return super()._load_template(name, globals)
        # Jinja's own lookup (jinja2.Environment._load_template), keyed by language too.
        key = (weakref.ref(self.loader), name, current.locale_id)
        template = self.cache.get(key)
        if template is not None and (not self.auto_reload or template.is_up_to_date):
            if globals:
                template.globals.update(globals)
            return template
        template = self.loader.load(self, name, self.make_globals(globals))
        self.cache[key] = template
        return template

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        current = _current() if self.fold_translations else None
        if current is not None and _foldable(tree):
            autoescape = self.autoescape(name) if callable(self.autoescape) else self.autoescape
            tree = _Fold(current.translations, bool(autoescape)).visit(tree)
            tree.set_environment(self)
        return tree


_GETTEXT_NAMES = frozenset({"_", "gettext"})


def _foldable(tree: nodes.Template) -> bool:
    """No autoescape switch and no own variable, macro argument or import named like gettext."""
    if any(True for _ in tree.find_all(nodes.EvalContextModifier)):
        return False
    return not any(node.name in _GETTEXT_NAMES for node in tree.find_all(nodes.Name)
                   if node.ctx != "load")


class _Fold(NodeTransformer):
    """`_("constant")` / `gettext("constant")` -> the translated constant."""

    def __init__(self, translations, autoescape: bool) -> None:
        self.translations = translations
        self.autoescape = autoescape

    def visit_Call(self, node: nodes.Call):
        node = self.generic_visit(node)
        if not (isinstance(node.node, nodes.Name) and node.node.name in _GETTEXT_NAMES
                and len(node.args) == 1 and isinstance(node.args[0], nodes.Const)
                and isinstance(node.args[0].value, str) and not node.kwargs
                and node.dyn_args is None and node.dyn_kwargs is None):
            return node
        translated = self.translations.gettext(node.args[0].value)
        try:  # as Jinja's newstyle gettext: Markup if autoescaping, then `% variables`
            value = (Markup(translated) if self.autoescape else translated) % {}
        except (TypeError, ValueError, KeyError):
            return node
        folded = nodes.MarkSafe(nodes.Const(str(value))) if self.autoescape else nodes.Const(value)
        return folded.set_lineno(node.lineno)


def install(app) -> None:
    """Templates translate through `catalogue()` (after flask_babel's init_app)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: catalogue().gettext(s),
        ngettext=lambda s, p, n: catalogue().ngettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: catalogue().pgettext(c, s),
        npgettext=lambda c, s, p, n: catalogue().npgettext(c, s, p, n))

_NAMED = ("full", "long", "medium", "short")

# Fields as Babel writes them (babel.dates.DateTimeFormat), for the letters our locales use:
# the numeric ones as str.format fields of the value ({0}), so that a whole date is one
# str.format call in C ...
_DIRECT = {
    "d": "{0.day}", "dd": "{0.day:02d}", "M": "{0.month}", "MM": "{0.month:02d}",
    "y": "{0.year}", "yyyy": "{0.year:04d}",
    "H": "{0.hour}", "HH": "{0.hour:02d}", "m": "{0.minute}", "mm": "{0.minute:02d}",
    "s": "{0.second}", "ss": "{0.second:02d}",
}
# ... the others as a function of the value, passed as a further argument
_MONTHS = {"MMM": ("format", "abbreviated"), "MMMM": ("format", "wide"),
           "LLL": ("stand-alone", "abbreviated"), "LLLL": ("stand-alone", "wide")}
_COMPUTED = {
    "yy": lambda value: f"{value.year % 100:02d}",
    "h": lambda value: str(value.hour % 12 or 12),
    "hh": lambda value: f"{value.hour % 12 or 12:02d}",
}


def _tokens(pattern: str) -> list[tuple[bool, str]]:
    """A Babel pattern as (is_field, text) pairs: field keys ("d", "MMM") and literal text."""
    parts = re.split(r"%\((\w+)\)s", babel_dates.parse_pattern(pattern).format)
    return [(index % 2 == 1, part if index % 2 else part.replace("%%", "%"))
            for index, part in enumerate(parts) if part]


class _Compiled:
    """One format of one locale as a str.format template of the value and a few functions
    (month names; fields only Babel can write, such as time-zone names or day periods)."""

    def __init__(self, tokens: list[tuple[bool, str]], locale: Locale) -> None:
        self.locale = locale
        self.extras = []
        template = []
        for is_field, text in tokens:
            if not is_field:
                template.append(text.replace("{", "{{").replace("}", "}}"))
            elif text in _DIRECT:
                template.append(_DIRECT[text])
            else:
                self.extras.append(self._extra(text))
                template.append(f"{{{len(self.extras)}}}")
        self.template = "".join(template)

    def _extra(self, key: str):
        if key in _MONTHS:
            # the locale's month names as a plain dict (Babel's locale data resolves aliases
            # on every lookup)
            context, width = _MONTHS[key]
            names = dict(self.locale.months[context][width])
            return lambda value: names[value.month]
        if key in _COMPUTED:
            return _COMPUTED[key]
        return lambda value: babel_dates.DateTimeFormat(value, self.locale)[key]

    def __call__(self, value) -> str:
        if self.extras:
            return self.template.format(value, *[extra(value) for extra in self.extras])
        return self.template.format(value)


@lru_cache(maxsize=64)
def _datetime_formatter(locale_id: str, fmt: str) -> _Compiled:
    locale = Locale.parse(locale_id)
    if fmt not in _NAMED:
        return _Compiled(_tokens(fmt), locale)
    # As babel.dates.format_datetime: the locale's "{1} {0}" (quotes removed) with the date
    # pattern's output for {1} and the time pattern's for {0}, here joined into one template.
    joined = babel_dates.get_datetime_format(fmt, locale=locale).replace("'", "")
    parts = {"{0}": _tokens(locale.time_formats[fmt].pattern),
             "{1}": _tokens(locale.date_formats[fmt].pattern)}
    tokens = []
    for piece in re.split(r"(\{[01]\})", joined):
        if piece in parts:
            tokens += parts[piece]
        elif piece:
            tokens.append((False, piece))
    return _Compiled(tokens, locale)


@lru_cache(maxsize=64)
def _date_formatter(locale_id: str, fmt: str) -> _Compiled:
    locale = Locale.parse(locale_id)
    pattern = locale.date_formats[fmt].pattern if fmt in _NAMED else fmt
    return _Compiled(_tokens(pattern), locale)


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
    current = _current()
    return _datetime_formatter(current.locale_id, fmt)(value.astimezone(current.zone))


def format_date(value: date | datetime | None, fmt: str = "long") -> str:
    """A date in the request's language ("" for None); a datetime is first moved to the
    request's time zone, as flask_babel does."""
    if not value:
        return ""
    current = _current()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(current.zone)
    return _date_formatter(current.locale_id, fmt)(value)
