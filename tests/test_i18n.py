"""portal.i18n: the fast translation lookup and date formatting give what flask_babel gives."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import flask_babel
import pytest
from flask import render_template_string

from portal import i18n
from portal.consent.models import Purpose
from portal.db import db
from portal.labels import PURPOSE_LABELS
from portal.texts.models import Text, TextKind
from tests.conftest import login, make_user

DATE_FORMATS = ("short", "medium", "long", "full", "LLLL yyyy", "EEEE d MMMM")
# times are not for dates, as in Babel; literal text, quotes, braces and percent signs too
FORMATS = DATE_FORMATS + ("d MMM y HH:mm", "EEEE h:mm a", "yy-MM-dd 'kl'. hh:mm:ss '{%}' LLL",
                          "H:m:s d/M y zzzz")


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


# --- constant messages translated when a template is compiled ---------------------------------

_CSRF = re.compile(r'(name="csrf_token" type="hidden" value=")[^"]+(")')
PAGES = {
    None: ["/", "/logga-in", "/registrera", "/integritetspolicy", "/cookies",
           "/kakor/installningar", "/tillganglighet", "/kontakt", "/finns-inte"],
    "user": ["/", "/mina-uppgifter", "/mina-rattigheter", "/texter/", "/texter/ny", "/konto/",
             "/mina-uppgifter/inloggningar", "/mina-uppgifter/logg", "/mina-uppgifter/coach",
             "/mina-uppgifter/marknadsforing", "/mina-uppgifter/export",
             "/mina-rattigheter/begaran", "/mina-rattigheter/begaran/radering"],
}


def _pages(client, who: str | None) -> dict[str, str]:
    pages = {}
    for path in PAGES[who]:
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        pages[path] = _CSRF.sub(r"\1…\2", response.get_data(as_text=True))
    return pages


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_pages_are_the_same_with_messages_translated_at_compile_time(app, locale):
    with app.app_context():
        user = make_user()
        user.locale = locale
        db.session.add(Text(user_id=user.id, title="<i>Mitt brev</i> 100 %", body="x",
                            kind=TextKind.PERSONLIGT_BREV))
        db.session.commit()
    env = app.jinja_env
    assert env.fold_translations
    try:
        for who in PAGES:
            client = app.test_client()
            client.set_cookie("lang", locale)
            if who == "user":
                login(client)
            folded = _pages(client, who)
            env.fold_translations = False
            env.cache.clear()
            at_runtime = _pages(client, who)
            env.fold_translations = True
            env.cache.clear()
            for path, html in folded.items():
                assert html == at_runtime[path], path
    finally:
        env.fold_translations = True
        env.cache.clear()
    assert ("Mina uppgifter" if locale == "sv" else "My data") in folded["/mina-uppgifter"]


def test_a_template_is_compiled_once_per_language_and_only_constants_are_folded(app):
    env = app.jinja_env
    source = ("{{ _('My data') }}|{{ _('Version %(version)s, %(when)s', version='<b>', when=1) }}"
              "|{{ ngettext('%(num)d text', '%(num)d texts', 2) }}")
    with app.test_request_context("/"):
        code = env.compile("<th>{{ _('My data') }}</th>{{ _('Version %(version)s', version=1) }}",
                           raw=True)
        assert "<th>Mina uppgifter</th>" in code  # static text of the compiled template
        assert code.count("'Version %(version)s'") == 1  # with variables: still a call
        assert env.from_string(source).render() == "Mina uppgifter|Version &lt;b&gt;, 1|2 texts"
        with flask_babel.force_locale("en"):
            assert env.from_string(source).render().startswith("My data|Version &lt;b&gt;, 1|")
        sv = env.get_template("account/rights.html")
        with flask_babel.force_locale("en"):
            en = env.get_template("account/rights.html")
        assert sv is not en and sv is env.get_template("account/rights.html")
    # a template that names its own `_` keeps its calls
    with app.test_request_context("/"):
        own = env.from_string("{% set _ = 'x'.upper %}{{ _() }}|{{ gettext('My data') }}")
        assert own.render() == "X|Mina uppgifter"
