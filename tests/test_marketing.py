"""Marketing: switches, history, one-click unsubscribe (RFC 8058), audience and mailings."""
import re
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import pytest
import sqlalchemy as sa
import time_machine
from itsdangerous import URLSafeSerializer

from portal.auth.models import AccountStatus, User
from portal.consent.marketing_services import (audience, make_unsubscribe_token,
                                               read_unsubscribe_token, send_mailing)
from portal.consent.models import ConsentEvent, ConsentSource, Purpose
from portal.consent.services import current_state, record_consent
from portal.db import db
from portal.mail.models import MailMessage
from tests.conftest import csrf_from, login, login_dpo, make_user, post_form, run_jobs

PAGE = "/mina-uppgifter/marknadsforing"
NEWSLETTER, OFFERS = Purpose.NEWSLETTER, Purpose.OFFERS
ONE_CLICK = {"data": "List-Unsubscribe=One-Click",
             "content_type": "application/x-www-form-urlencoded"}


def member(email, *choices, role="user", verified=True, status=AccountStatus.ACTIVE,
           name="Anna Andersson"):
    """A user with consent events: each choice is (purpose, granted[, source])."""
    user = make_user(email=email, role=role, verified=verified, name=name)
    for purpose, granted, *source in choices:
        record_consent(user.id, purpose, granted, source[0] if source else
                       ConsentSource.REGISTRATION)
    user.status = status
    db.session.commit()
    return user


def newsletter_ids():
    return set(db.session.scalars(audience(NEWSLETTER)))


def events_of(user_id):
    return db.session.scalars(sa.select(ConsentEvent).where(ConsentEvent.user_id == user_id)
                              .order_by(ConsentEvent.id)).all()


def history_rows(html):
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def toggle(client, purpose, granted):
    return post_form(client, f"{PAGE}/{purpose}", {"granted": granted}, form_path=PAGE)


def unsubscribe_path(app, user_id, purpose=NEWSLETTER):
    with app.app_context():
        return f"/avregistrera/{make_unsubscribe_token(user_id, purpose)}"


# --- the settings page -------------------------------------------------------------------------

def test_page_shows_each_state_in_words_and_explains_in_swedish(client):
    member("anna@example.se", (NEWSLETTER, True))
    login(client)
    html = client.get(PAGE).get_data(as_text=True)
    assert "<h1>Nyhetsbrev och erbjudanden</h1>" in html
    assert "Du får nyhetsbrevet." in html and "Tacka nej till nyhetsbrevet" in html
    # never chosen counts as off: the conservative reading
    assert "Du får inte våra erbjudanden." in html and "Skicka erbjudanden till mig" in html
    assert "Ungefär en gång i månaden" in html and "Högst några gånger om året" in html
    assert "Ett nej gäller direkt och utan undantag" in html
    assert "när du återställer ditt lösenord, när en export av dina uppgifter är klar" in html
    assert [row[1:] for row in history_rows(html)] == [["Nyhetsbrev", "Ja",
                                                        "När du registrerade dig"]]


def test_toggle_off_and_on_take_one_click_each_and_apply_at_once(client):
    user = member("anna@example.se", (NEWSLETTER, True))
    login(client)
    assert newsletter_ids() == {user.id}
    response = toggle(client, "newsletter", "0")
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    assert newsletter_ids() == set()  # the very next mailing already leaves Anna out
    html = client.get(PAGE).get_data(as_text=True)
    assert "Klart. Vi skickar inte längre nyhetsbrevet till dig." in html
    assert "Du får inte nyhetsbrevet." in html and "Skicka nyhetsbrevet till mig" in html
    assert toggle(client, "newsletter", "1").status_code == 302
    assert newsletter_ids() == {user.id}
    assert toggle(client, "offers", "1").status_code == 302
    assert current_state(user.id, [NEWSLETTER, OFFERS]) == {NEWSLETTER: True, OFFERS: True}
    assert [(e.purpose, e.granted, e.source) for e in events_of(user.id)] == [
        (NEWSLETTER, True, ConsentSource.REGISTRATION), (NEWSLETTER, False, ConsentSource.SETTINGS),
        (NEWSLETTER, True, ConsentSource.SETTINGS), (OFFERS, True, ConsentSource.SETTINGS)]


def test_history_lists_every_change_newest_first_in_stockholm_time(client):
    from portal.consent.marketing_services import set_marketing

    user = member("anna@example.se")
    steps = [(datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc),
              lambda: record_consent(user.id, NEWSLETTER, True, ConsentSource.REGISTRATION)),
             (datetime(2026, 7, 1, 8, 30, tzinfo=timezone.utc),
              lambda: set_marketing(user.id, NEWSLETTER, False)),
             (datetime(2026, 7, 2, 9, 45, tzinfo=timezone.utc),
              lambda: set_marketing(user.id, OFFERS, True))]
    for moment, step in steps:
        with time_machine.travel(moment, tick=False):
            step()
            db.session.commit()
    client.post(unsubscribe_path(client.application, user.id, OFFERS), **ONE_CLICK)
    login(client)
    rows = history_rows(client.get(PAGE).get_data(as_text=True))
    assert [r[1:] for r in rows] == [
        ["Erbjudanden", "Nej", "Med avregistreringslänken i ett mejl"],
        ["Erbjudanden", "Ja", "I integritetsportalen"],
        ["Nyhetsbrev", "Nej", "I integritetsportalen"],
        ["Nyhetsbrev", "Ja", "När du registrerade dig"],
    ]
    assert "2 juli 2026" in rows[1][0] and "11:45" in rows[1][0]  # summer time: UTC+2
    assert "10:30" in rows[2][0]
    assert "15 jan. 2026" in rows[3][0] and "13:00" in rows[3][0]  # winter time: UTC+1


def test_choosing_the_current_state_again_adds_nothing(client):
    user = member("anna@example.se", (NEWSLETTER, True))
    login(client)
    assert toggle(client, "newsletter", "1").status_code == 302
    assert len(events_of(user.id)) == 1


def test_post_without_csrf_token_is_refused_and_changes_nothing(client):
    user = member("anna@example.se", (NEWSLETTER, True))
    login(client)
    response = client.post(f"{PAGE}/newsletter", data={"granted": "0"})
    assert response.status_code == 400
    assert "Formuläret har gått ut" in response.get_data(as_text=True)
    assert newsletter_ids() == {user.id} and len(events_of(user.id)) == 1


@pytest.mark.parametrize("value", ["2", "", "ja", "1" * 5000])
def test_bad_value_gives_a_swedish_error_and_changes_nothing(client, value):
    user = member("anna@example.se", (NEWSLETTER, True))
    login(client)
    response = toggle(client, "newsletter", value)
    assert response.status_code == 400
    assert "Ingenting har ändrats" in response.get_data(as_text=True)
    assert len(events_of(user.id)) == 1


@pytest.mark.parametrize("purpose", ["spam", "cookies_marketing", "NEWSLETTER", "%3Cscript%3E"])
def test_unknown_purpose_is_404(client, purpose):
    user = member("anna@example.se")
    login(client)
    response = toggle(client, purpose, "1")
    assert response.status_code == 404
    assert "Sidan finns inte" in response.get_data(as_text=True)
    assert events_of(user.id) == []


@pytest.mark.parametrize("role", ["coach", "dpo"])
def test_coach_and_dpo_get_404(client, role):
    staff = member("personal@example.se", role=role)
    (login_dpo if role == "dpo" else login)(client, email="personal@example.se")
    assert client.get(PAGE).status_code == 404
    token = csrf_from(client, "/konto/")
    response = client.post(f"{PAGE}/newsletter", data={"csrf_token": token, "granted": "1"})
    assert response.status_code == 404
    assert events_of(staff.id) == []


def test_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/logga-in" in response.headers["Location"]


# --- one-click unsubscribe ---------------------------------------------------------------------

def test_token_round_trip_and_refusals(ctx):
    token = make_unsubscribe_token(42, OFFERS)
    assert read_unsubscribe_token(token) == (42, OFFERS)
    assert read_unsubscribe_token(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert read_unsubscribe_token("inte-en-token") is None
    for payload in ([42, "cookies_marketing"], ["42", "offers"], [True, "offers"], {"u": 42}):
        forged = URLSafeSerializer("test-secret-key", salt="unsubscribe-v1").dumps(payload)
        assert read_unsubscribe_token(forged) is None


def test_unsubscribe_get_only_asks_and_changes_nothing(app):
    user = member("anna@example.se", (NEWSLETTER, True))
    response = app.test_client().get(unsubscribe_path(app, user.id))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Vill du tacka nej till nyhetsbrevet?</h1>" in html
    assert "Ja, sluta skicka nyhetsbrevet" in html and "Du behöver inte logga in." in html
    assert "anna@example.se" not in html and "Anna" not in html  # a forwarded mail shows nothing
    assert newsletter_ids() == {user.id} and len(events_of(user.id)) == 1


def test_unsubscribe_form_post_works_without_logging_in(app):
    user = member("anna@example.se", (NEWSLETTER, True), (OFFERS, True))
    client = app.test_client()
    path = unsubscribe_path(app, user.id)
    response = post_form(client, path, {"List-Unsubscribe": "One-Click"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Du får inte längre nyhetsbrevet" in html
    assert "Logga in för att se och ändra alla dina val" in html
    assert 'href="/logga-in?next=/mina-uppgifter/marknadsforing"' in html
    assert current_state(user.id, [NEWSLETTER, OFFERS]) == {NEWSLETTER: False, OFFERS: True}
    assert events_of(user.id)[-1].source == ConsentSource.UNSUBSCRIBE_LINK
    again = post_form(client, path, {})
    assert again.status_code == 200 and len(events_of(user.id)) == 3  # twice is fine
    follow = post_form(client, "/logga-in?next=/mina-uppgifter/marknadsforing",
                       {"email": "anna@example.se", "password": "ett-bra-losenord-42"})
    assert follow.headers["Location"] == PAGE
    assert "Du får inte nyhetsbrevet." in client.get(PAGE).get_data(as_text=True)


def test_rfc8058_one_click_post_without_cookies_or_csrf(app):
    user = member("anna@example.se", (NEWSLETTER, True), (OFFERS, True))
    mail_client = app.test_client(use_cookies=False)
    response = mail_client.post(unsubscribe_path(app, user.id, OFFERS), **ONE_CLICK)
    assert response.status_code == 200
    assert "Du får inte fler erbjudanden" in response.get_data(as_text=True)
    assert current_state(user.id, [NEWSLETTER, OFFERS]) == {NEWSLETTER: True, OFFERS: False}
    assert set(db.session.scalars(audience(OFFERS))) == set()


def test_csrf_exemption_is_only_for_the_unsubscribe_view(app):
    user = member("anna@example.se", (NEWSLETTER, True))
    client = app.test_client()
    login(client)
    assert client.post(f"{PAGE}/newsletter", **{**ONE_CLICK,
                                                "data": "granted=0"}).status_code == 400
    assert newsletter_ids() == {user.id}


@pytest.mark.parametrize("how", ["tampered", "other salt", "other key", "garbage"])
def test_bad_unsubscribe_token_is_404_and_changes_nothing(app, how):
    user = member("anna@example.se", (NEWSLETTER, True))
    good = unsubscribe_path(app, user.id).removeprefix("/avregistrera/")
    payload = [user.id, "newsletter"]
    token = {
        "tampered": good[:-1] + ("A" if good[-1] != "A" else "B"),
        "other salt": URLSafeSerializer("test-secret-key", salt="other-salt").dumps(payload),
        "other key": URLSafeSerializer("another-key", salt="unsubscribe-v1").dumps(payload),
        "garbage": quote("<script>alert(1)</script>", safe=""),
    }[how]
    client = app.test_client(use_cookies=False)
    for response in (client.get(f"/avregistrera/{token}"),
                     client.post(f"/avregistrera/{token}", **ONE_CLICK)):
        html = response.get_data(as_text=True)
        assert response.status_code == 404 and "Sidan finns inte" in html
        assert "<script>alert" not in html
    assert newsletter_ids() == {user.id} and len(events_of(user.id)) == 1


# --- audience and mailings -----------------------------------------------------------------------

def test_audience_is_exactly_the_active_verified_users_who_said_yes_last(ctx):
    yes = member("ja@example.se", (NEWSLETTER, True))
    settings, link = ConsentSource.SETTINGS, ConsentSource.UNSUBSCRIBE_LINK
    back = member("igen@example.se", (NEWSLETTER, True), (NEWSLETTER, False, settings),
                  (NEWSLETTER, True, settings))
    member("nej@example.se", (NEWSLETTER, True), (NEWSLETTER, False, settings))
    member("lank@example.se", (NEWSLETTER, True), (NEWSLETTER, False, link))
    member("aldrig@example.se")
    offers_only = member("erbjudanden@example.se", (OFFERS, True), (NEWSLETTER, False))
    member("obekraftad@example.se", (NEWSLETTER, True), verified=False)
    member("begransad@example.se", (NEWSLETTER, True), status=AccountStatus.RESTRICTED)
    member("radering@example.se", (NEWSLETTER, True), status=AccountStatus.ERASURE_PENDING)
    member("pseudonym@example.se", (NEWSLETTER, True), status=AccountStatus.PSEUDONYMISED)
    member("coach@example.se", (NEWSLETTER, True), (OFFERS, True), role="coach")
    member("dso@example.se", (NEWSLETTER, True), (OFFERS, True), role="dpo")
    assert newsletter_ids() == {yes.id, back.id}
    assert set(db.session.scalars(audience(OFFERS))) == {offers_only.id}


def test_send_mailing_queues_exactly_the_audience_with_one_click_headers(app, ctx, outbox):
    anna = member("anna@example.se", (NEWSLETTER, True))
    bo = member("bo@example.se", (NEWSLETTER, True), name="Bo Berg")
    member("nej@example.se", (NEWSLETTER, False))
    member("erbjudanden@example.se", (OFFERS, True))
    assert send_mailing("newsletter_example", NEWSLETTER) == 2
    assert run_jobs() == 2
    assert sorted(m["To"].addresses[0].addr_spec for m in outbox) == [
        "anna@example.se", "bo@example.se"]
    by_address = {m["To"].addresses[0].addr_spec: m for m in outbox}
    message = by_address["bo@example.se"]
    assert message["Subject"] == "Tre tips för ett starkare personligt brev"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = str(message["List-Unsubscribe"])
    assert re.fullmatch(r"<http://portal\.test/avregistrera/[A-Za-z0-9_.\-]+>", header), header
    url = header.strip("<>")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith("Hej Bo Berg!") and "Tre tips" not in text.splitlines()[0]
    assert "Börja med jobbet, inte med dig själv." in text
    assert url in text and f'href="{url}"' in html  # a visible link in both bodies
    assert "Tacka nej till nyhetsbrevet med ett klick:" in text
    assert "http://portal.test/mina-uppgifter/marknadsforing" in text
    # the mail client follows the header: a one-click POST with no cookies stops only Bo
    path = urlsplit(url).path
    assert app.test_client(use_cookies=False).post(path, **ONE_CLICK).status_code == 200
    assert newsletter_ids() == {anna.id}
    assert current_state(bo.id, [NEWSLETTER])[NEWSLETTER] is False


def test_list_unsubscribe_header_is_sent_as_a_plain_url(app, ctx):
    from portal.mail.services import build_message

    member("anna@example.se", (NEWSLETTER, True))
    send_mailing("newsletter_example", NEWSLETTER)
    row = db.session.scalars(sa.select(MailMessage)).one()
    raw = build_message(row, app.config).as_bytes()
    assert b"\nList-Unsubscribe: <http://portal.test/avregistrera/" in raw


def test_send_mailing_works_in_batches(ctx, monkeypatch):
    import portal.consent.marketing_services as services

    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    users = [member(f"u{i}@example.se", (NEWSLETTER, True)) for i in range(5)]
    member("nej@example.se", (NEWSLETTER, False))
    seen = []
    original = services.audience
    monkeypatch.setattr(services, "audience",
                        lambda p, after_id=0: seen.append(after_id) or original(p, after_id))
    assert send_mailing("newsletter_example", NEWSLETTER) == 5
    ids = sorted(u.id for u in users)
    assert seen == [0, ids[1], ids[3], ids[4]]  # 2 + 2 + 1, then an empty batch ends it
    mailed = db.session.scalars(sa.select(MailMessage.user_id)).all()
    assert sorted(mailed) == ids


def test_cli_queues_the_audience_and_refuses_other_templates(app, ctx):
    member("anna@example.se", (NEWSLETTER, True))
    member("bo@example.se", (NEWSLETTER, True), (OFFERS, True))
    member("nej@example.se", (NEWSLETTER, False))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["send-newsletter", "newsletter_example"])
    assert result.exit_code == 0, result.output
    assert "2 utskick av newsletter_example har lagts i kön (nyhetsbrevet)" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MailMessage)) == 2
    refusals = {
        ("verify_email",): "inte ett marknadsföringsutskick",
        ("reset_password", "--purpose", "offers"): "inte ett marknadsföringsutskick",
        ("../newsletter_example",): "inte ett marknadsföringsutskick",
        ("newsletter_example", "--purpose", "offers"): "hör inte till erbjudanden",
        ("newsletter_finns_inte",): "finns inte",
    }
    for args, message in refusals.items():
        refused = runner.invoke(args=["send-newsletter", *args])
        assert refused.exit_code != 0 and message in refused.output, (args, refused.output)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MailMessage)) == 2


def test_script_in_a_name_is_always_escaped(app, client, outbox):
    evil = "<script>alert(1)</script>"
    member("anna@example.se", (NEWSLETTER, True), name=evil)
    login(client)
    toggle(client, "newsletter", "0")
    toggle(client, "newsletter", "1")
    html = client.get(PAGE).get_data(as_text=True)
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    with app.app_context():
        assert send_mailing("newsletter_example", NEWSLETTER) == 1
    run_jobs()
    body = outbox[0].get_body(("html",)).get_content()
    assert evil not in body and "&lt;script&gt;" in body
    assert db.session.scalar(sa.select(User.name).where(User.email == "anna@example.se")) == evil
