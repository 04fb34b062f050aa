"""portal.i18n: the fast translation lookup and date formatting give what flask_babel gives."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import flask_babel
import pytest
from flask import render_template_string

from portal import i18n
from portal.labels import PURPOSE_LABELS
from portal.consent.models import Purpose

DATE_FORMATS = ("short", "medium", "long", "full", "LLLL yyyy", "EEEE d MMMM")
FORMATS = DATE_FORMATS + ("d MMM y HH:mm", "EEEE h:mm a")  # times: not for dates, as in Babel


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_dates_and_times_are_written_exactly_as_babel_writes_them(app, locale):
    """Every 7 h 13 min over two years (both DST changes each year, every month, hour and
    weekday), each named format and a few patterns."""
    moment, end = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    compared = 0
    with app.test_request_context("/"), flask_babel.force_locale(locale):
        while moment < end:
            for fmt in FORMATS:
                assert i18n.format_datetime(moment, fmt) == flask_babel.format_datetime(
                    moment, fmt), (moment, fmt)
            for fmt in DATE_FORMATS:
                assert i18n.format_date(moment.date(), fmt) == flask_babel.format_date(
                    moment.date(), fmt), (moment, fmt)
            compared += len(FORMATS) + len(DATE_FORMATS)
            moment += timedelta(hours=7, minutes=13)
        # a datetime given to the date filter is moved to Swedish time first, as flask_babel does
        late = datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc)
        assert i18n.format_date(late) == flask_babel.format_date(late, "long")  # our default
        assert i18n.format_date(late, "d") == "1"  # 01:30 on 1 April in Stockholm
        naive = datetime(2026, 6, 1, 12, 0)  # naive means UTC, as in flask_babel
        assert i18n.format_datetime(naive) == flask_babel.format_datetime(naive)
    assert compared > 30_000
    assert i18n.format_datetime(None) == "" and i18n.format_date(None) == ""


def test_the_templates_filters_are_the_fast_ones(app):
    with app.test_request_context("/"):
        moment = datetime(2026, 11, 26, 9, 5, 7, tzinfo=timezone.utc)
        html = render_template_string("{{ t|datetime }}|{{ d|dateformat }}|{{ t|datetime('short') }}",
                                      t=moment, d=date(2026, 11, 26))
        assert html == "26 nov. 2026 10:05:07|26 november 2026|2026-11-26 10:05"


def test_translations_follow_the_locale_even_when_it_is_forced_and_restored(app):
    with app.test_request_context("/"):
        assert i18n.gettext("My data") == "Mina uppgifter"
        with flask_babel.force_locale("en"):
            assert i18n.gettext("My data") == "My data"
            assert str(PURPOSE_LABELS[Purpose.NEWSLETTER]) == flask_babel.gettext(
                "Newsletter") != "Nyhetsbrev"
            assert render_template_string("{{ _('My data') }}") == "My data"
        assert i18n.gettext("My data") == "Mina uppgifter"
        assert render_template_string("{{ _('My data') }}") == "Mina uppgifter"
        flask_babel.refresh()  # the locale chosen anew (e.g. after a login) is obeyed too
        assert i18n.gettext("My data") == "Mina uppgifter"


def test_gettext_and_ngettext_fill_in_variables_like_flask_babel(app):
    with app.test_request_context("/"):
        for n in (0, 1, 5):
            singular = "%(num)d of your texts is shared with your job coach."
            plural = "%(num)d of your texts are shared with your job coach."
            assert i18n.ngettext(singular, plural, n) == flask_babel.ngettext(singular, plural, n)
        assert i18n.gettext("Version %(version)s, %(when)s", version="3", when="i dag") == \
            flask_babel.gettext("Version %(version)s, %(when)s", version="3", when="i dag")


def test_outside_an_app_context_messages_stay_untranslated():
    assert i18n.gettext("My data") == "My data"
    assert str(i18n.lazy_gettext("My data")) == "My data"
