"""'Mina uppgifter': the register of processing, the page, corrections, e-mail change."""
import re

import pytest
import sqlalchemy as sa

from portal.audit import AuditEvent
from portal.auth.models import LoginEvent, User
from portal.auth.services import browser_family, truncate_ip
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.consent.models import ConsentEvent, ConsentSource, Purpose
from portal.db import Base, db
from portal.processing import REGISTER
from portal.texts.models import Text, TextKind
from tests.conftest import links_in, login, login_dpo, make_user, post_form, run_jobs

KEYS = {"id", "user_id"}


def user_linked_columns() -> set[str]:
    """Every column of every table that holds data about a user (users and its FK children)."""
    import portal.models  # noqa: F401

    linked = {"users", "audit_events"}  # audit_events.subject_id names the user, without an FK
    while True:  # tables that point at a user-linked table are user-linked too
        more = {t.name for t in Base.metadata.sorted_tables
                if any(fk.column.table.name in linked for fk in t.foreign_keys)
                and t.name not in {"organisations", "stored_blobs"} | linked}
        if not more:
            break
        linked |= more
    linked |= {"stored_blobs"}  # the user's encrypted files (user_id FK)
    columns = set()
    for table in Base.metadata.sorted_tables:
        if table.name in linked:
            columns |= {f"{table.name}.{c.name}" for c in table.columns if c.name not in KEYS}
    return columns - {"audit_events.subject_id"}


def test_every_user_linked_column_belongs_to_a_category_of_the_register():
    covered = {f for category in REGISTER for f in category.fields}
    assert user_linked_columns() - covered == set()
    assert covered - user_linked_columns() == set(), "the register names columns that do not exist"


def test_every_category_has_its_article_15_context():
    for category in REGISTER:
        assert category.purposes and category.legal_basis and category.retention
        assert category.recipients and category.source and category.title


@pytest.fixture
def full_user(client):
    """A user with something in every category."""
    org = Organisation(name="Matchning & Co <AB>", org_number="5560160680",
                       kind=OrganisationKind.MATCHNINGSFORETAG, contact_email="faktura@matchning.se")
    db.session.add(org)
    db.session.flush()
    user = make_user()
    user.phone, user.org_number, user.organisation_id = "+46701234567", "5560160680", org.id
    db.session.add_all([
        Text(user_id=user.id, title="Brev till <Volvo>", kind=TextKind.PERSONLIGT_BREV,
             body="Hej!", shared_with_coach=True),
        UsageEvent(user_id=user.id, organisation_id=org.id),
        ConsentEvent(user_id=user.id, purpose=Purpose.NEWSLETTER, granted=False,
                     source=ConsentSource.SETTINGS),
        ConsentEvent(user_id=user.id, purpose=Purpose.COOKIES_STATISTICS, granted=True,
                     source=ConsentSource.COOKIE_BANNER),
    ])
    db.session.commit()
    login(client)
    return user


def test_my_data_page_shows_every_category_with_the_users_data(client, full_user):
    response = client.get("/mina-uppgifter")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    for category in REGISTER:
        assert f'id="{category.key}"' in html, category.key
    for shown in ["Anna Andersson", "anna@example.se", "070-123 45 67", "556016-0680",
                  "Matchning &amp; Co &lt;AB&gt;", "Brev till &lt;Volvo&gt;", "Nyhetsbrev",
                  "Statistikkakor", "Inloggning", "Stöd och Matchning"]:
        assert shown in html, shown
    assert "<Volvo>" not in html and "<AB>" not in html
    assert html.count("Varför vi har det här, och hur länge") == len(REGISTER)


def test_my_data_query_count_does_not_grow_with_data(client, full_user, app):
    from sqlalchemy import event

    def count_queries():
        statements = []
        listener = lambda *args: statements.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get("/mina-uppgifter").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    small = count_queries()
    db.session.add_all([Text(user_id=full_user.id, title=f"T{i}", kind=TextKind.CV, body="x")
                        for i in range(40)])
    db.session.add_all([UsageEvent(user_id=full_user.id) for _ in range(40)])
    db.session.commit()
    assert count_queries() == small


@pytest.mark.parametrize("role", ["coach", "dpo"])
def test_other_roles_do_not_have_a_my_data_page(app, role):
    client = app.test_client()
    make_user(email=f"{role}@example.se", role=role)
    (login_dpo if role == "dpo" else login)(client, email=f"{role}@example.se")
    assert client.get("/mina-uppgifter").status_code == 404
    assert client.get("/mina-uppgifter/andra").status_code == 404


def test_anonymous_is_sent_to_login(client):
    assert client.get("/mina-uppgifter").status_code == 302


def test_correcting_name_phone_and_org_number_is_audited_and_told_to_the_organisation(
        client, full_user, outbox):
    response = post_form(client, "/mina-uppgifter/andra", {
        "name": "Anna Berg", "phone": "+44 20 7946 0958", "org_number": "212000-0142"})
    assert response.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, full_user.id)
    assert (user.name, user.phone, user.org_number) == ("Anna Berg", "+442079460958",
                                                        "2120000142")
    event = db.session.scalars(sa.select(AuditEvent)
                               .where(AuditEvent.action == "profile.corrected")).one()
    assert set(event.details["fields"]) == {"name", "phone", "org_number"}
    assert "Anna Berg" not in str(event.details)
    run_jobs()
    (notice,) = [m for m in outbox if m["To"].addresses[0].addr_spec == "faktura@matchning.se"]
    body = notice.get_body(("plain",)).get_content()
    assert "Anna Berg" in body and "212000-0142" in body and "art. 19" in body


BAD_PROFILE = [
    ({"org_number": "556016-0681"}, "Kontrollera den sista siffran"),
    ({"org_number": "0123456789"}, "Kontrollera den sista siffran"),
    ({"org_number": "55601606"}, "Kontrollera den sista siffran"),
    ({"phone": "070-ABC 45 67"}, "bara siffror"),
    ({"phone": "12"}, "bara siffror"),
    ({"name": ""}, "Skriv ditt namn"),
    ({"name": "x" * 10_000}, "högst 200 tecken"),
    ({"name": "Anna\r\nBcc: x"}, "tecken som inte går att använda"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_PROFILE)
def test_bad_corrections_get_a_swedish_error_and_change_nothing(client, full_user, changes,
                                                                message):
    form = {"name": "Anna Andersson", "phone": "", "org_number": "", **changes}
    response = post_form(client, "/mina-uppgifter/andra", form)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    user = db.session.get(User, full_user.id)
    assert (user.name, user.phone, user.org_number) == ("Anna Andersson", "+46701234567",
                                                        "5560160680")


def test_script_in_every_profile_field_is_shown_escaped(client, full_user):
    post_form(client, "/mina-uppgifter/andra", {"name": "<script>alert(1)</script>",
                                                "phone": "", "org_number": ""})
    for path in ["/mina-uppgifter", "/mina-uppgifter/andra", "/konto/"]:
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_email_change_needs_recent_login_confirms_by_link_and_tells_the_old_address(
        client, full_user, outbox):
    import time_machine
    from datetime import timedelta

    from portal.clock import now

    with time_machine.travel(now() + timedelta(minutes=11)):
        guarded = client.get("/mina-uppgifter/e-post")
        assert guarded.status_code == 302 and "bekrafta-losenord" in guarded.headers["Location"]
    post_form(client, "/mina-uppgifter/e-post", {"email": "Anna.Ny@Example.se"})
    run_jobs()
    (confirm,) = [m for m in outbox if m["To"].addresses[0].addr_spec == "anna.ny@example.se"]
    (link,) = [u for u in links_in(confirm) if "/l/" in u]
    db.session.expire_all()
    assert db.session.get(User, full_user.id).email == "anna@example.se"  # not before the link
    assert client.get(link.removeprefix("http://portal.test")).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, full_user.id).email == "anna.ny@example.se"
    run_jobs()
    told = [m for m in outbox if m["To"].addresses[0].addr_spec == "anna@example.se"]
    assert told and "anna.ny@example.se" in told[-1].get_body(("plain",)).get_content()
    assert client.get(link.removeprefix("http://portal.test")).status_code == 410


def test_email_change_to_a_taken_address_changes_nothing(client, full_user, outbox):
    make_user(email="upptagen@example.se", name="Någon Annan")
    response = post_form(client, "/mina-uppgifter/e-post", {"email": "upptagen@example.se"})
    assert response.status_code == 200  # the same answer as for a free address
    run_jobs()
    assert all("/l/" not in "".join(links_in(m)) or "logga-in" in "".join(links_in(m))
               for m in outbox)
    db.session.expire_all()
    assert db.session.get(User, full_user.id).email == "anna@example.se"


@pytest.mark.parametrize("bad", ["anna@example.se\r\nBcc: x@example.se", "inte-en-adress", ""])
def test_email_change_bad_input(client, full_user, bad):
    response = post_form(client, "/mina-uppgifter/e-post", {"email": bad})
    assert response.status_code == 200
    assert "Det finns ett problem" in response.get_data(as_text=True)


def test_login_history_keeps_network_prefix_and_browser_family_only(app):
    client = app.test_client()
    make_user()
    chrome = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0 Safari/537.36")
    post_form(client, "/logga-in", {"email": "anna@example.se", "password": "fel-fel-fel-1"},
              environ_base={"REMOTE_ADDR": "203.0.113.77"}, headers={"User-Agent": chrome})
    post_form(client, "/logga-in", {"email": "anna@example.se", "password": "ett-bra-losenord-42"},
              environ_base={"REMOTE_ADDR": "2001:db8:1234:5678::1"},
              headers={"User-Agent": chrome})
    events = db.session.scalars(sa.select(LoginEvent).order_by(LoginEvent.id)).all()
    assert [(e.succeeded, e.ip_prefix, e.browser) for e in events] == [
        (False, "203.0.113.0/24", "Chrome"), (True, "2001:db8:1234::/48", "Chrome")]
    html = client.get("/mina-uppgifter/inloggningar").get_data(as_text=True)
    assert "203.0.113.0/24" in html and "203.0.113.77" not in html


def test_login_history_shows_the_last_twenty(app):
    client = app.test_client()
    make_user()
    for _ in range(22):
        login(app.test_client())
    login(client)
    html = client.get("/mina-uppgifter/inloggningar").get_data(as_text=True)
    assert html.count("<tr><td>") == 20


@pytest.mark.parametrize(("address", "prefix"), [
    ("192.168.1.200", "192.168.1.0/24"), ("::1", "::/48"), ("garbage", "")])
def test_truncate_ip(address, prefix):
    assert truncate_ip(address) == prefix


def test_browser_family_never_keeps_the_full_string():
    assert browser_family("Mozilla/5.0 ... Firefox/140.0") == "Firefox"
    assert browser_family("Mozilla/5.0 ... Chrome/1 Safari/1 Edg/1") == "Edge"
    assert browser_family("curl/8") == "other"


def test_registration_records_marketing_choices(client):
    post_form(client, "/registrera", {
        "name": "Eva Ek", "email": "eva@example.se", "password": "vinter-gurka-77",
        "password_confirm": "vinter-gurka-77", "access_source": "fackforbund",
        "accept_policy": "y", "no_offers": "y"})
    events = db.session.scalars(sa.select(ConsentEvent).order_by(ConsentEvent.id)).all()
    assert [(e.purpose, e.granted, e.source) for e in events] == [
        (Purpose.NEWSLETTER, True, ConsentSource.REGISTRATION),
        (Purpose.OFFERS, False, ConsentSource.REGISTRATION)]


def test_rights_page_explains_each_right_with_its_action_and_imy(client):
    html = client.get("/mina-rattigheter").get_data(as_text=True)
    for text in ["Integritetsskyddsmyndigheten", "imy.se", "/mina-uppgifter",
                 "/mina-uppgifter/andra", "/mina-uppgifter/marknadsforing",
                 "/kakor/installningar"]:
        assert text in html, text
    assert len(re.findall(r"<h2", html)) >= 7


def test_activity_log_lists_events_about_the_user(client, full_user):
    html = client.get("/mina-uppgifter/logg").get_data(as_text=True)
    assert "Inloggning" in html and "Du" in html
