"""Server-side sessions: rotation at login, revocation, timeouts, the recent-auth guard."""
from datetime import timedelta

import pytest
import time_machine
from portal.clock import now
from tests.conftest import GUARDED_PATH, login, make_user, post_form


def cookie(client, app):
    found = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return found.value if found else None


def test_cookie_from_before_login_does_not_carry_a_login(client, app):
    make_user()
    client.get("/logga-in")
    before = cookie(client, app)
    assert before
    assert login(client).status_code == 302
    after = cookie(client, app)
    assert after and after != before
    # Replaying the pre-login cookie gives an anonymous visitor, not the account.
    attacker = app.test_client()
    attacker.set_cookie(app.config["SESSION_COOKIE_NAME"], before)
    assert attacker.get("/konto/").status_code == 302


def test_logout_ends_the_server_side_session_so_a_copied_cookie_is_dead(client, app):
    make_user()
    login(client)
    stolen = cookie(client, app)
    assert post_form(client, "/logga-ut", {}, form_path="/konto/").status_code == 302
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], stolen)
    assert replay.get("/konto/").status_code == 302


def test_logout_everywhere_refuses_replayed_cookies_of_every_device(app):
    make_user()
    phone, laptop = app.test_client(), app.test_client()
    login(phone)
    login(laptop)
    phone_cookie = cookie(phone, app)
    assert "2 ställen" in laptop.get("/konto/").get_data(as_text=True)
    response = post_form(laptop, "/logga-ut-overallt", {}, form_path="/konto/")
    assert response.status_code == 302
    assert phone.get("/konto/").status_code == 302
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], phone_cookie)
    assert replay.get("/konto/").status_code == 302
    assert laptop.get("/konto/").status_code == 302


def test_password_change_ends_other_sessions_but_keeps_this_one(app, outbox):
    make_user()
    here, elsewhere = app.test_client(), app.test_client()
    login(here)
    login(elsewhere)
    response = post_form(here, "/konto/losenord", {
        "current_password": "ett-bra-losenord-42", "password": "ny-vinter-tulpan-9",
        "password_confirm": "ny-vinter-tulpan-9"})
    assert response.status_code == 302
    assert here.get("/konto/").status_code == 200
    assert elsewhere.get("/konto/").status_code == 302
    assert login(app.test_client(), password="ny-vinter-tulpan-9").status_code == 302


def test_wrong_current_password_changes_nothing(client, app):
    make_user()
    login(client)
    response = post_form(client, "/konto/losenord", {
        "current_password": "fel-fel-fel-fel", "password": "ny-vinter-tulpan-9",
        "password_confirm": "ny-vinter-tulpan-9"})
    assert response.status_code == 200
    assert "nuvarande lösenordet är fel" in response.get_data(as_text=True)
    assert login(app.test_client(), password="ett-bra-losenord-42").status_code == 302
    assert login(app.test_client(), password="ny-vinter-tulpan-9").status_code == 200


def test_idle_session_expires_after_two_hours(client):
    make_user()
    login(client)
    with time_machine.travel(now() + timedelta(hours=2, minutes=1)):
        assert client.get("/konto/").status_code == 302


def test_active_session_ends_after_twelve_hours_anyway(client):
    make_user()
    start = now()
    with time_machine.travel(start, tick=False) as traveller:
        login(client)
        for hours in range(1, 12):
            traveller.move_to(start + timedelta(hours=hours))
            assert client.get("/konto/").status_code == 200
        traveller.move_to(start + timedelta(hours=12, minutes=1))
        assert client.get("/konto/").status_code == 302


@pytest.fixture
def guarded():
    """A route behind the recent-authentication guard (registered in tests/conftest.py)."""
    return GUARDED_PATH


def test_recent_auth_guard_asks_again_after_ten_minutes(app, guarded):
    client = app.test_client()
    make_user()
    start = now()
    with time_machine.travel(start, tick=False) as traveller:
        login(client)
        assert client.get(guarded).get_data(as_text=True) == "känslig åtgärd"
        traveller.move_to(start + timedelta(minutes=11))
        response = client.get(guarded)
        assert response.status_code == 302
        assert "/bekrafta-losenord?next=/_test/kanslig" in response.headers["Location"]
        wrong = post_form(client, "/bekrafta-losenord?next=/_test/kanslig",
                          {"password": "inte-mitt-losenord"})
        assert "Lösenordet är fel" in wrong.get_data(as_text=True)
        ok = post_form(client, "/bekrafta-losenord?next=/_test/kanslig",
                       {"password": "ett-bra-losenord-42"})
        assert ok.headers["Location"] == "/_test/kanslig"
        assert client.get(guarded).get_data(as_text=True) == "känslig åtgärd"


def test_session_cookie_flags(client, app):
    make_user()
    response = login(client)
    header = [h for h in response.headers.getlist("Set-Cookie")
              if h.startswith(app.config["SESSION_COOKIE_NAME"])][0]
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Expires" not in header  # a browser-session cookie


def test_production_cookies_are_secure_and_host_prefixed(monkeypatch):
    from portal.config import load_config

    for name, value in {"PORTAL_ENV": "production", "SECRET_KEY": "s" * 40,
                        "DATA_KEYS": "k1:" + "A" * 43, "DATABASE_URL": "postgresql://x/y",
                        "REDIS_URL": "redis://r:6379/0",
                        "SIGNING_KEY": "A" * 43}.items():
        monkeypatch.setenv(name, value)
    cfg = load_config()
    assert cfg["SESSION_COOKIE_SECURE"] is True
    assert cfg["SESSION_COOKIE_NAME"] == "__Host-portal"
