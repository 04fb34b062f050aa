"""Cookie banner, cookie settings, the consent cookie and the consented page statistics."""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import time_machine

from portal.consent import stats
from portal.consent.cookies import COOKIE_NAME, encode_choice, parse_choice
from portal.consent.models import ConsentEvent, ConsentSource, DailyPageView, Purpose
from portal.db import db
from tests.conftest import csrf_from, login, make_user, post_form

ROOT = Path(__file__).resolve().parent.parent
BANNER_RE = re.compile(r'<section[^>]*aria-labelledby="cookie-banner-title".*?</section>', re.S)
ITEM_ROUTE = "/_test/sak/<int:item_id>"
F, S, M = Purpose.COOKIES_FUNCTIONAL, Purpose.COOKIES_STATISTICS, Purpose.COOKIES_MARKETING


@pytest.fixture(scope="module")
def stats_app(app):
    """A second app on the same database with a route that has a variable part (an id)."""
    from portal import create_app

    other = create_app({key: app.config[key] for key in (
        "TESTING", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MAIL_BACKEND", "SMTP_HOST",
        "SMTP_PORT", "SMTP_SECURITY", "BASE_URL", "SERVER_NAME")})
    other.add_url_rule(ITEM_ROUTE, "test_item", lambda item_id: f"sak {item_id}")
    return other


def banner(response) -> str | None:
    match = BANNER_RE.search(response.get_data(as_text=True))
    return match.group(0) if match else None


def choose(client, choice: str, next_path: str = "/"):
    return post_form(client, "/kakor/val", {"choice": choice, "next": next_path},
                     form_path=next_path)


def set_cookie_names(response) -> list[str]:
    return [header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")]


def consent_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    assert len(headers) == 1, headers
    return headers[0]


def page_views() -> list[DailyPageView]:
    rows = list(db.session.scalars(sa.select(DailyPageView).order_by(DailyPageView.route)))
    db.session.remove()
    return rows


def consent_events(user_id: int) -> list[ConsentEvent]:
    rows = list(db.session.scalars(sa.select(ConsentEvent).where(ConsentEvent.user_id == user_id)
                                   .order_by(ConsentEvent.id)))
    db.session.remove()
    return rows


# --- the banner -------------------------------------------------------------------------------

def test_first_visit_shows_banner_with_two_equal_buttons_and_a_settings_link(client):
    response = client.get("/logga-in")
    html = response.get_data(as_text=True)
    section = banner(response)
    assert section is not None
    assert 'action="/kakor/val"' in section and 'method="post"' in section
    assert 'name="csrf_token"' in section
    assert '<input type="hidden" name="next" value="/logga-in">' in section
    buttons = re.findall(r'<button type="submit" name="choice" value="(\w+)" class="([^"]+)">'
                         r'([^<]+)</button>', section)
    assert [(value, text) for value, _cls, text in buttons] == [
        ("all", "Acceptera alla"), ("necessary", "Endast nödvändiga")]
    assert buttons[0][1] == buttons[1][1]  # equally prominent: the same style
    assert '<a href="/kakor/installningar">Anpassa</a>' in section
    assert '<h2 id="cookie-banner-title">Kakor i integritetsportalen</h2>' in section
    # Before the page itself: the banner comes first, the page's own h1 after it.
    assert html.index(section) < html.index('<main') < html.index("<h1>")
    assert "<script" not in section and "style=" not in section


def test_banner_is_gone_after_a_choice_and_the_choice_is_confirmed(client):
    response = choose(client, "necessary", next_path="/logga-in")
    assert response.status_code == 302
    assert response.headers["Location"] == "/logga-in"
    page = client.get("/logga-in")
    assert banner(page) is None
    assert "Ditt val om kakor är sparat." in page.get_data(as_text=True)
    assert banner(client.get("/")) is None


def test_necessary_only_stores_all_false_and_counts_nothing(client):
    response = choose(client, "necessary")
    assert consent_header(response).startswith(f"{COOKIE_NAME}=v1.f0.s0.m0;")
    assert client.get_cookie(COOKIE_NAME).value == "v1.f0.s0.m0"
    for path in ("/", "/logga-in", "/kakor/installningar", "/cookies"):
        assert client.get(path).status_code == 200
    assert page_views() == []


def test_consent_cookie_is_httponly_lax_and_lasts_180_days(client):
    header = consent_header(choose(client, "all"))
    assert f"{COOKIE_NAME}=v1.f1.s1.m1;" in header
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert f"Max-Age={180 * 86400}" in header
    assert "Secure" not in header  # plain HTTP in tests; see the next test


def test_consent_cookie_is_secure_when_session_cookies_are(app, client, monkeypatch):
    token = csrf_from(client, "/")
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    response = client.post("/kakor/val", data={"csrf_token": token, "choice": "necessary",
                                                "next": "/"})
    assert "Secure" in consent_header(response)


def test_accept_all_counts_page_views_by_route_pattern_without_identifiers(stats_app):
    client = stats_app.test_client()
    # 23:30 UTC on 1 March is already 2 March in Stockholm.
    with time_machine.travel(datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc), tick=False):
        user = make_user()
        login(client)
        choose(client, "all")
        assert client.get("/_test/sak/4711").status_code == 200
        assert client.get("/_test/sak/4712").status_code == 200
    rows = page_views()
    counted = {row.route: row.views for row in rows}
    assert counted[ITEM_ROUTE] == 2
    assert {row.day for row in rows} == {date(2026, 3, 2)}
    assert list(DailyPageView.__table__.columns.keys()) == ["day", "route", "views"]
    for row in rows:
        assert not re.search(r"\d", row.route)  # no concrete id of any kind, no user id
        assert "@" not in row.route and user.email not in row.route


def test_totals_are_aggregated_per_route_within_the_window(ctx):
    today = stats.stockholm_today()
    db.session.add_all([
        DailyPageView(day=today, route="/a", views=3),
        DailyPageView(day=today - timedelta(days=1), route="/a", views=2),
        DailyPageView(day=today, route="/b", views=7),
        DailyPageView(day=today - timedelta(days=29), route="/c", views=1),
        DailyPageView(day=today - timedelta(days=30), route="/a", views=100),
    ])
    db.session.flush()
    assert stats.page_view_totals() == [("/b", 7), ("/a", 5), ("/c", 1)]
    assert stats.page_view_totals(days=1) == [("/b", 7), ("/a", 3)]
    with pytest.raises(ValueError):
        stats.page_view_totals(days=0)


def test_only_successful_page_gets_are_counted(client):
    choose(client, "all")
    assert client.get("/").status_code == 200
    assert [(r.route, r.views) for r in page_views()] == [("/", 1)]
    assert client.get("/finns-inte").status_code == 404
    assert client.get("/static/css/portal.css").status_code == 200
    assert client.post("/kakor/val", data={"choice": "all"}).status_code == 400
    assert client.head("/logga-in").status_code == 200
    assert [(r.route, r.views) for r in page_views()] == [("/", 1)]


def test_a_failure_to_count_never_breaks_the_page(client, monkeypatch, caplog):
    choose(client, "all")

    def broken(*args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(stats, "_upsert", broken)
    with caplog.at_level(logging.WARNING, logger="portal.consent.stats"):
        response = client.get("/logga-in")
    assert response.status_code == 200
    assert "Logga in" in response.get_data(as_text=True)
    assert any(r.levelno == logging.WARNING for r in caplog.records)


# --- the settings page -------------------------------------------------------------------------

def test_settings_page_explains_each_category_and_starts_with_everything_off(client):
    response = client.get("/kakor/installningar")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Inställningar för kakor</h1>" in html
    assert banner(response) is None  # the page itself offers the same choices
    for heading in ("Nödvändiga kakor", "Funktionella kakor", "Statistik",
                    "Marknadsföringskakor"):
        assert f"<h2>{heading}</h2>" in html
    assert "Alltid på" in html and 'name="necessary"' not in html
    assert "i 180 dagar" in html
    assert "ingen IP-adress" in html
    assert 'href="/cookies"' in html
    checkboxes = re.findall(r'<input[^>]*type="checkbox"[^>]*>', html)
    assert len(checkboxes) == 3 and not any("checked" in box for box in checkboxes)
    assert 'value="all" class="button button-secondary">Acceptera alla' in html
    assert 'value="necessary" class="button button-secondary">Endast nödvändiga' in html


def test_settings_page_saves_a_custom_combination(client):
    response = post_form(client, "/kakor/installningar",
                         {"functional": "y", "marketing": "y", "choice": "save"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/kakor/installningar"
    assert client.get_cookie(COOKIE_NAME).value == "v1.f1.s0.m1"
    html = client.get("/kakor/installningar").get_data(as_text=True)
    assert "Dina inställningar för kakor är sparade." in html
    checked = set(re.findall(r'<input checked[^>]*name="(\w+)"', html))
    assert checked == {"functional", "marketing"}
    client.get("/")
    assert page_views() == []  # statistics stayed off


@pytest.mark.parametrize(("button", "value"), [("all", "v1.f1.s1.m1"),
                                               ("necessary", "v1.f0.s0.m0")])
def test_settings_page_offers_accept_all_and_necessary_only(client, button, value):
    response = post_form(client, "/kakor/installningar",
                         {"functional": "y", "choice": button})
    assert response.status_code == 302
    assert client.get_cookie(COOKIE_NAME).value == value


# --- logged-in users: consent events -----------------------------------------------------------

def test_logged_in_choices_are_logged_once_per_change(client):
    user = make_user()
    login(client)
    choose(client, "all")
    events = consent_events(user.id)
    assert {(e.purpose, e.granted, e.source) for e in events} == {
        (p, True, ConsentSource.COOKIE_BANNER) for p in (F, S, M)}
    choose(client, "all")  # the same again changes nothing
    assert len(consent_events(user.id)) == 3
    post_form(client, "/kakor/installningar", {"functional": "y", "choice": "save"})
    later = consent_events(user.id)[3:]
    assert {(e.purpose, e.granted, e.source) for e in later} == {
        (S, False, ConsentSource.SETTINGS), (M, False, ConsentSource.SETTINGS)}


def test_anonymous_choices_leave_no_consent_events(client):
    choose(client, "all")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent)) == 0


# --- hostile and broken input -----------------------------------------------------------------

@pytest.mark.parametrize("value", ["garbage", "v1.f1.s1.m1x", "v2.f1.s1.m1", "v1.f2.s1.m1",
                                   "V1.F1.S1.M1", "v1.s1.f1.m1", "", "v1.f1.s1.m1" * 20])
def test_tampered_cookie_counts_as_not_chosen(client, value):
    client.set_cookie(COOKIE_NAME, value)
    response = client.get("/")
    assert banner(response) is not None
    assert page_views() == []


def test_parse_choice_round_trips_only_exact_values():
    choice = {F: False, S: True, M: False}
    assert encode_choice(choice) == "v1.f0.s1.m0"
    assert parse_choice("v1.f0.s1.m0") == choice
    assert parse_choice(None) is None
    assert parse_choice(" v1.f0.s1.m0") is None
    assert parse_choice("v1.f0.s1.m0\n") is None


def test_post_without_csrf_token_is_refused_and_sets_no_cookie(client):
    client.get("/")
    response = client.post("/kakor/val", data={"choice": "all", "next": "/"})
    assert response.status_code == 400
    assert "Formuläret har gått ut" in response.get_data(as_text=True)
    assert COOKIE_NAME not in set_cookie_names(response)
    assert client.get_cookie(COOKIE_NAME) is None
    settings = client.post("/kakor/installningar", data={"choice": "all"})
    assert settings.status_code == 400
    assert client.get_cookie(COOKIE_NAME) is None


@pytest.mark.parametrize("choice", ["", "yes", "all ", "save"])
def test_unknown_choice_is_refused_and_changes_nothing(client, choice):
    response = choose(client, choice)
    assert response.status_code == 400
    assert "Ingenting har ändrats" in response.get_data(as_text=True)
    assert client.get_cookie(COOKIE_NAME) is None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "evil.example", "/" + "a" * 2000])
def test_open_redirect_in_next_is_ignored(client, target):
    token = csrf_from(client, "/")
    response = client.post("/kakor/val", data={"csrf_token": token, "choice": "necessary",
                                                "next": target})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc in {"", "localhost"} and location.path == "/"
    assert client.get_cookie(COOKIE_NAME).value == "v1.f0.s0.m0"  # the choice still counts


# --- nothing non-essential before the choice -------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/logga-in"])
def test_first_anonymous_visit_gets_only_the_session_cookie(app, path):
    client = app.test_client()
    response = client.get(path)
    assert response.status_code == 200
    assert set(set_cookie_names(response)) <= {app.config["SESSION_COOKIE_NAME"]}
    after = choose(client, "necessary", next_path=path)
    assert set(set_cookie_names(after)) <= {app.config["SESSION_COOKIE_NAME"], COOKIE_NAME}


def test_no_browser_storage_is_used_anywhere():
    sources = [*(ROOT / "static").rglob("*.js"), *(ROOT / "templates").rglob("*.html")]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for api in ("localStorage", "sessionStorage", "indexedDB", "document.cookie"):
            assert api not in text, f"{api} in {source.relative_to(ROOT)}"


def test_cookie_choice_is_available_outside_a_request(app):
    from flask import render_template_string

    with app.app_context():
        assert render_template_string('{% include "consent/_banner.html" %}').strip() == ""


def test_banner_on_an_error_page_after_a_post_returns_to_the_start_page(client):
    client.get("/")
    response = client.post("/logga-in", data={"email": "x"})  # no CSRF token: an error page
    assert response.status_code == 400
    assert '<input type="hidden" name="next" value="/">' in banner(response)
