"""CSRF, rate limits, enumeration, security headers, redirects and hostile input."""
import re

import pytest
import sqlalchemy as sa

from portal.auth.models import User
from portal.db import db
from tests.conftest import csrf_from, login, make_user, post_form, run_jobs


def test_post_without_csrf_token_is_refused_in_swedish(client):
    make_user()
    response = client.post("/logga-in", data={"email": "anna@example.se",
                                              "password": "ett-bra-losenord-42"})
    assert response.status_code == 400
    assert "Formuläret har gått ut" in response.get_data(as_text=True)
    assert client.get("/konto/").status_code == 302


@pytest.mark.parametrize("path", ["/logga-ut", "/logga-ut-overallt", "/sprak",
                                  "/registrera/skicka-igen", "/konto/losenord"])
def test_every_state_change_needs_a_csrf_token(client, path):
    make_user()
    login(client)
    response = client.post(path, data={"lang": "en", "email": "anna@example.se"})
    assert response.status_code == 400
    assert client.get("/konto/").status_code == 200  # still logged in: nothing happened


def test_csrf_token_of_another_session_is_refused(app):
    make_user()
    victim, attacker = app.test_client(), app.test_client()
    login(victim)
    token = csrf_from(attacker, "/logga-in")
    response = victim.post("/logga-ut-overallt", data={"csrf_token": token})
    assert response.status_code == 400
    assert victim.get("/konto/").status_code == 200


def test_twenty_wrong_passwords_are_throttled_with_a_swedish_message(client):
    make_user()
    statuses = [login(client, password=f"fel-losenord-{i}").status_code for i in range(20)]
    assert statuses[:10] == [200] * 10
    assert set(statuses[10:]) == {429}
    text = login(client).get_data(as_text=True)  # even the right password waits now
    assert "För många misslyckade inloggningsförsök" in text


def test_throttle_is_per_account_too_not_only_per_ip(app):
    make_user()
    for i in range(10):
        login(app.test_client(), password=f"fel-{i}-xxxxxx")
    other_ip = app.test_client()
    response = post_form(other_ip, "/logga-in",
                         {"email": "anna@example.se", "password": "ett-bra-losenord-42"},
                         environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert response.status_code == 429
    other_account = post_form(other_ip, "/logga-in",
                              {"email": "bo@example.se", "password": "whatever-123"},
                              environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other_account.status_code == 200


def test_successful_logins_do_not_count_towards_the_limit(app):
    make_user()
    for _ in range(12):
        client = app.test_client()
        assert login(client).status_code == 302


def test_unknown_email_and_wrong_password_get_the_same_answer(client):
    make_user()
    unknown = login(client, email="finns-inte@example.se", password="ett-bra-losenord-42")
    wrong = login(client, password="fel-losenord-99")
    strip = lambda r: re.sub(r'value="[^"]*"', "", r.get_data(as_text=True))  # noqa: E731
    assert unknown.status_code == wrong.status_code == 200
    assert strip(unknown).replace("finns-inte@example.se", "X") == \
        strip(wrong).replace("anna@example.se", "X")


def test_password_reset_answer_does_not_reveal_accounts(client, outbox):
    make_user()
    known = post_form(client, "/glomt-losenord", {"email": "anna@example.se"})
    unknown = post_form(client, "/glomt-losenord", {"email": "ingen@example.se"})
    strip = lambda r: re.sub(r'value="[^"]*"', "", r.get_data(as_text=True))  # noqa: E731
    assert strip(known) == strip(unknown)  # (CSRF tokens carry a timestamp)
    run_jobs()
    assert [m["To"].addresses[0].addr_spec for m in outbox] == ["anna@example.se"]


def test_security_headers_on_every_page(client):
    make_user()
    login(client)
    for path in ["/", "/logga-in", "/konto/", "/finns-inte"]:
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"


def test_no_inline_script_or_style_in_pages(client):
    make_user()
    login(client)
    for path in ["/", "/registrera", "/integritetspolicy", "/konto/"]:
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert " style=" not in html and "<style" not in html, path
        assert " on" not in re.sub(r"[^<]*(<[^>]*>)?", lambda m: m.group(1) or "", html)[:0]


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)",
    "/%0d%0aSet-Cookie:x=1", "\\\\evil.example",
])
def test_open_redirect_in_next_is_ignored(client, target):
    make_user()
    response = post_form(client, "/logga-in?next=" + target,
                         {"email": "anna@example.se", "password": "ett-bra-losenord-42"},
                         form_path="/logga-in")
    assert response.status_code == 302
    assert response.headers["Location"] == "/mina-uppgifter"


def test_local_next_is_honoured(client):
    make_user()
    response = post_form(client, "/logga-in?next=/konto/losenord",
                         {"email": "anna@example.se", "password": "ett-bra-losenord-42"},
                         form_path="/logga-in")
    assert response.headers["Location"] == "/konto/losenord"


BAD_REGISTRATIONS = [
    ({"name": ""}, "Skriv ditt namn"),
    ({"name": "A" * 10_000}, "Använd högst 200 tecken"),
    ({"name": "Eva\x00Null"}, "tecken som inte går att använda"),
    ({"email": ""}, "Skriv din e-postadress"),
    ({"email": "eva@example.se\r\nBcc: alla@example.se"}, "utan mellanslag eller radbrytningar"),
    ({"email": "inte-en-adress"}, "i rätt format"),
    ({"email": "a" * 250 + "@example.se"}, "för lång"),
    ({"password": "kort", "password_confirm": "kort"}, "minst 8 tecken"),
    ({"password": "x" * 129, "password_confirm": "x" * 129}, "högst 128 tecken"),
    ({"password": "password123", "password_confirm": "password123"}, "för vanligt"),
    ({"password": "lösenord123", "password_confirm": "lösenord123"}, "för vanligt"),
    ({"password_confirm": "något-annat-helt"}, "inte likadana"),
    ({"access_source": "hemligt"}, None),
    ({"access_source": ""}, "Välj hur du fick tillgång"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_REGISTRATIONS)
def test_bad_registration_input_gets_a_swedish_error_and_saves_nothing(client, changes, message):
    form = {"name": "Eva Ek", "email": "eva@example.se", "password": "vinter-gurka-77",
            "password_confirm": "vinter-gurka-77", "access_source": "fackforbund",
            "accept_policy": "y", **changes}
    response = post_form(client, "/registrera", form)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Det finns ett problem" in text
    if message:
        assert message in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_long_password_of_64_and_more_characters_is_allowed(client):
    password = "en mening som är lång nog att vara ett mycket bra lösenord, 64+ tecken!"
    assert len(password) > 64
    response = post_form(client, "/registrera", {
        "name": "Eva Ek", "email": "eva@example.se", "password": password,
        "password_confirm": password, "access_source": "fackforbund", "accept_policy": "y"})
    assert response.status_code == 302


@pytest.mark.parametrize("encoded_name", [b"Eva\xff\xfeEk", b"Eva\xc3(Ek"])
def test_invalid_utf8_in_a_form_is_a_clear_error(client, encoded_name):
    token = csrf_from(client, "/registrera")
    body = (b"csrf_token=" + token.encode() + b"&name=" + encoded_name +
            b"&email=eva%40example.se&password=vinter-gurka-77&password_confirm=vinter-gurka-77"
            b"&access_source=fackforbund&accept_policy=y")
    response = client.post("/registrera", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "inte kunde läsas" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_percent_encoded_invalid_utf8_is_refused_too(client):
    token = csrf_from(client, "/registrera")
    response = client.post("/registrera", data=f"csrf_token={token}&name=Eva%FF%FEEk",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "inte kunde läsas" in response.get_data(as_text=True)


def test_oversized_request_is_refused_in_swedish(client):
    response = client.post("/registrera", data={"name": "x" * (13 * 1024 * 1024)})
    assert response.status_code == 413
    assert "för stort" in response.get_data(as_text=True)


def test_token_paths_are_redacted_from_access_logs():
    import logging

    from portal import _RedactTokens

    record = logging.LogRecord("werkzeug", logging.INFO, "", 0, '"%s" %s',
                               ("GET /l/abcDEF_123-xyz HTTP/1.1", "302"), None)
    _RedactTokens().filter(record)
    assert "abcDEF" not in record.getMessage() and "/l/[redacted]" in record.getMessage()


def test_gunicorn_access_log_lines_are_redacted_and_still_formatted():
    """gunicorn logs each request with one mapping of atoms (gunicorn.conf.py's format)."""
    import logging

    from gunicorn.glogging import SafeAtoms

    from portal import _RedactTokens

    atoms = SafeAtoms({"h": "192.0.2.1", "m": "GET", "U": "/avregistrera/tok.EN-1",
                       "H": "HTTP/1.1", "s": 302, "b": "0", "L": "0.01"})
    record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0,
                               '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss', (atoms,), None)
    _RedactTokens().filter(record)
    assert record.getMessage() == ('192.0.2.1 "GET /avregistrera/[redacted] HTTP/1.1" 302 0 '
                                   "0.01s")


def test_link_token_never_reaches_the_page_it_renders(client, outbox):
    post_form(client, "/glomt-losenord", {"email": "x@example.se"})
    make_user()
    post_form(client, "/glomt-losenord", {"email": "anna@example.se"})
    run_jobs()
    link = [u for u in re.findall(r"https?://\S+", outbox[-1].get_body(("plain",)).get_content())
            if "/l/" in u][0]
    path = link.removeprefix("http://portal.test")
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"] == "/nytt-losenord"
    page = client.get("/nytt-losenord").get_data(as_text=True)
    assert path.split("/l/")[1] not in page


def test_database_unreachable_answers_503_in_swedish_and_recovers(app, client, monkeypatch):
    """A dropped database connection (a PostgreSQL restart) gives a plain-Swedish 503 with
    Retry-After, not a 500, and the very next request works again."""
    import sqlalchemy as sa

    from portal.texts import services as text_services
    from tests.conftest import login, make_user

    make_user()
    assert login(client).status_code == 302
    real = text_services.text_page

    def lost(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed"))

    monkeypatch.setattr(text_services, "text_page", lost)
    response = client.get("/texter/")
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert "Tjänsten är tillfälligt otillgänglig" in html and "databas" in html
    assert response.headers["Cache-Control"] == "no-store"
    monkeypatch.setattr(text_services, "text_page", real)
    assert client.get("/texter/").status_code == 200  # the same session, still logged in
