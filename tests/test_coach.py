"""Coach sharing: adding a coach, the invitation, the coach area, revoking, and who may do what."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.audit import AuditEvent
from portal.auth.models import AccountStatus, Role, User
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.clock import now
from portal.coach import services
from portal.coach.models import CoachLink, CoachRead, LinkStatus
from portal.coach.tasks import expire_invitations
from portal.db import db
from portal.mail.models import MailMessage
from portal.texts.models import Text, TextKind
from portal.texts.services import billing_organisation_for, create_text
from tests.conftest import csrf_from, links_in, login, login_dpo, make_user, post_form, run_jobs

PASSWORD = "ett-bra-losenord-42"
ANNA, BO = "anna@example.se", "bo@example.se"
CARL, DORA, DPO = "carl@matchning.se", "dora@facket.se", "dso@cowrite.se"
NEW_COACH = "nils@matchning.se"


# --- helpers --------------------------------------------------------------------------------

def make_org(name: str = "Matchning AB", number: str = "5560160680",
             kind: OrganisationKind = OrganisationKind.MATCHNINGSFORETAG,
             contact: str | None = None) -> Organisation:
    org = Organisation(name=name, org_number=number, kind=kind, contact_email=contact)
    db.session.add(org)
    db.session.commit()
    return org


def make_link(user: User, coach: User | None, org: Organisation | None,
              status: LinkStatus = LinkStatus.ACTIVE, email: str | None = None) -> CoachLink:
    stamp = now()
    link = CoachLink(user_id=user.id, coach_id=coach.id if coach else None,
                     organisation_id=org.id if org else None,
                     coach_email=email or (coach.email if coach else NEW_COACH),
                     coach_name=coach.name if coach else "", status=status, invited_at=stamp,
                     invite_expires_at=stamp + timedelta(days=14),
                     accepted_at=stamp if status == LinkStatus.ACTIVE else None)
    db.session.add(link)
    db.session.commit()
    return link


def add_text(user: User, title: str, shared: bool, body: str = "Brödtext") -> Text:
    text = Text(user_id=user.id, title=title, kind=TextKind.CV, body=body,
                shared_with_coach=shared)
    db.session.add(text)
    db.session.commit()
    return text


def links() -> list[CoachLink]:
    db.session.expire_all()
    return db.session.scalars(sa.select(CoachLink).order_by(CoachLink.id)).all()


def actions(prefix: str = "coach.") -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action)
                                   .where(AuditEvent.action.startswith(prefix))
                                   .order_by(AuditEvent.id)))


def mails(template: str) -> list[MailMessage]:
    return db.session.scalars(sa.select(MailMessage).where(MailMessage.template == template)
                              .order_by(MailMessage.id)).all()


def as_(app, email: str | None):
    """A test client logged in as `email` (None: anonymous)."""
    client = app.test_client()
    if email is not None:
        assert (login_dpo if email == DPO else login)(client, email).status_code == 302
    return client


ADD_FORM = {"coach_email": CARL, "coach_name": "Carl Coach", "organisation": "ny",
            "org_name": "Nya Matchning AB", "org_number": "556016-0680",
            "org_kind": "matchningsforetag"}


def add_coach(client, action: str = "confirm", **changes):
    return post_form(client, "/mina-uppgifter/coach/ny", {**ADD_FORM, **changes,
                                                           "action": action})


def invitation_path(message) -> str:
    (link,) = [u for u in links_in(message) if "/coach/inbjudan/" in u]
    return link.removeprefix("http://portal.test")


def invite(client, outbox, **changes) -> str:
    """Add a coach through the pages; return the path of the mailed invitation link."""
    assert add_coach(client, **changes).status_code == 302
    run_jobs()
    (message,) = [m for m in outbox if "/coach/inbjudan/" in str(m.get_body(("plain",)))]
    outbox.clear()
    return invitation_path(message)


@pytest.fixture
def anna(client):
    user = make_user(ANNA)
    assert login(client).status_code == 302
    return user


@pytest.fixture
def world():
    """Anna shares with Carl (Matchning AB); Bo shares with Dora; a DPO."""
    org = make_org()
    union = make_org("Facket", "8020016641", OrganisationKind.FACKFORBUND)
    anna = make_user(ANNA)
    anna.phone, anna.org_number = "+46701234567", "5560160680"
    bo = make_user(BO, name="Bo Berg")
    carl = make_user(CARL, name="Carl Coach", role="coach")
    dora = make_user(DORA, name="Dora Dahl", role="coach")
    dpo = make_user(DPO, name="Dag Dso", role="dpo")
    carl.organisation_id, dora.organisation_id = org.id, union.id
    db.session.commit()
    anna_link = make_link(anna, carl, org)
    bo_link = make_link(bo, dora, union)
    shared = add_text(anna, "Delat cv", shared=True, body="Mitt delade cv")
    secret = add_text(anna, "Hemligt brev", shared=False, body="Bara för mig")
    bo_shared = add_text(bo, "Bos delade brev", shared=True)
    ids = {"anna": anna.id, "bo": bo.id, "anna_link": anna_link.id, "bo_link": bo_link.id,
           "shared": shared.id, "secret": secret.id, "bo_shared": bo_shared.id}
    return {"ids": ids, "org": org, "anna": anna, "carl": carl, "dora": dora,
            "anna_link": anna_link}


# --- the access matrix ----------------------------------------------------------------------

ROLES = ("coach", "other_coach", "user", "other_user", "dpo", "anonymous")
EMAILS = {"coach": CARL, "other_coach": DORA, "user": ANNA, "other_user": BO, "dpo": DPO,
          "anonymous": None}
L = "login"  # a redirect to the login page
MATRIX = {
    "coach home": ("GET", "/coach/", (200, 200, 404, 404, 404, L)),
    "coach: a user's texts": ("GET", "/coach/anvandare/{anna}", (200, 404, 404, 404, 404, L)),
    "coach: shared text": ("GET", "/coach/anvandare/{anna}/texter/{shared}",
                           (200, 404, 404, 404, 404, L)),
    "coach: unshared text": ("GET", "/coach/anvandare/{anna}/texter/{secret}",
                             (404, 404, 404, 404, 404, L)),
    "coach: other user's text under this user": (
        "GET", "/coach/anvandare/{anna}/texter/{bo_shared}", (404, 404, 404, 404, 404, L)),
    "coach: other coach's user": ("GET", "/coach/anvandare/{bo}", (404, 200, 404, 404, 404, L)),
    "coach: unknown user": ("GET", "/coach/anvandare/999999", (404, 404, 404, 404, 404, L)),
    "user: coach page": ("GET", "/mina-uppgifter/coach", (404, 404, 200, 200, 404, L)),
    "user: add coach": ("GET", "/mina-uppgifter/coach/ny", (404, 404, 200, 200, 404, L)),
    "user: resend": ("POST", "/mina-uppgifter/coach/{anna_link}/skicka-igen",
                     (404, 404, 302, 404, 404, L)),
    "user: cancel": ("POST", "/mina-uppgifter/coach/{anna_link}/avbryt",
                     (404, 404, 302, 404, 404, L)),
    "user: revoke": ("POST", "/mina-uppgifter/coach/{anna_link}/aterkalla",
                     (404, 404, 302, 404, 404, L)),
    "invoice basis": ("GET", "/dso/fakturaunderlag", (404, 404, 404, 404, 200, L)),
    "invoice basis CSV": ("GET", "/dso/fakturaunderlag/2026-11/{org}.csv",
                          (404, 404, 404, 404, 200, L)),
}
CASES = [pytest.param(name, role, expected, id=f"{name} as {role}")
         for name, (_, _, answers) in MATRIX.items() for role, expected in zip(ROLES, answers)]


@pytest.mark.parametrize("route, role, expected", CASES)
def test_access_matrix(app, world, route, role, expected):
    method, template, _ = MATRIX[route]
    path = template.format(org=world["org"].id, **world["ids"])
    client = as_(app, EMAILS[role])
    if method == "GET":
        response = client.get(path)
    else:
        token = csrf_from(client, "/konto/" if EMAILS[role] else "/logga-in")
        response = client.post(path, data={"csrf_token": token})
    if expected == L:
        assert response.status_code == 302 and "/logga-in" in response.headers["Location"]
        return
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected == 302:
        assert response.headers["Location"].endswith("/mina-uppgifter/coach")


def test_a_forged_revoke_of_another_users_link_is_404_and_changes_nothing(app, world, outbox):
    bo = as_(app, BO)
    response = post_form(bo, f"/mina-uppgifter/coach/{world['ids']['anna_link']}/aterkalla",
                         {}, form_path="/mina-uppgifter/coach")
    assert response.status_code == 404
    assert "Sidan finns inte" in response.get_data(as_text=True)
    assert links()[0].status == LinkStatus.ACTIVE
    assert actions() == [] and mails("coach_revoked") == []


def test_state_changes_need_a_csrf_token(app, world):
    anna = as_(app, ANNA)
    response = anna.post(f"/mina-uppgifter/coach/{world['ids']['anna_link']}/aterkalla")
    assert response.status_code == 400
    assert "Formuläret har gått ut" in response.get_data(as_text=True)
    assert links()[0].status == LinkStatus.ACTIVE


# --- the coach area -------------------------------------------------------------------------

def test_coach_sees_only_shared_texts_and_only_name_and_email(app, world):
    carl = as_(app, CARL)
    home = carl.get("/coach/").get_data(as_text=True)
    assert "<h1>Personer som delar texter med dig</h1>" in home
    assert "Anna Andersson" in home and ANNA in home and "Bo Berg" not in home
    page = carl.get(f"/coach/anvandare/{world['ids']['anna']}").get_data(as_text=True)
    assert "Delat cv" in page and "Hemligt brev" not in page
    for hidden in ("070-123 45 67", "+46701234567", "556016-0680", "5560160680",
                   "Stöd och Matchning"):
        assert hidden not in page, hidden
    text = carl.get(f"/coach/anvandare/{world['ids']['anna']}/texter/{world['ids']['shared']}")
    html = text.get_data(as_text=True)
    assert text.status_code == 200 and text.headers["Cache-Control"] == "no-store"
    assert '<div class="text-body">Mitt delade cv</div>' in html
    assert "Skrivskyddad: du kan inte ändra texten." in html
    assert "<form" not in html.split('<main')[1].split("</main>")[0]  # nothing to change


def test_every_read_is_logged_with_a_title_snapshot_and_shown_to_the_user(app, world):
    carl, anna = as_(app, CARL), as_(app, ANNA)
    path = f"/coach/anvandare/{world['ids']['anna']}/texter/{world['ids']['shared']}"
    assert carl.get(path).status_code == 200
    assert carl.get(path).status_code == 200
    reads = db.session.scalars(sa.select(CoachRead).order_by(CoachRead.id)).all()
    assert [(r.link_id, r.user_id, r.text_id, r.text_title) for r in reads] == [
        (world["anna_link"].id, world["ids"]["anna"], world["ids"]["shared"], "Delat cv")] * 2
    events = db.session.scalars(sa.select(AuditEvent)
                                .where(AuditEvent.action == "coach.text_read")).all()
    assert [(e.actor_id, e.subject_id, e.details) for e in events] == [
        (world["carl"].id, world["ids"]["anna"],
         {"link_id": world["anna_link"].id, "text_id": world["ids"]["shared"]})] * 2
    page = anna.get("/mina-uppgifter/coach").get_data(as_text=True)
    log = page.split("Det här har din jobbcoach läst")[1]
    assert log.count("Delat cv") == 2 and "Carl Coach" in log
    assert [r.id for r in services.reads_for_user(world["ids"]["anna"], limit=1)] == [reads[1].id]
    assert carl.get(f"/coach/anvandare/{world['ids']['anna']}/texter/"
                    f"{world['ids']['secret']}").status_code == 404
    assert len(services.reads_for_user(world["ids"]["anna"])) == 2  # a refused read is no read


def test_revoked_coach_with_an_open_session_is_refused_on_the_next_request(app, world, outbox):
    carl, anna = as_(app, CARL), as_(app, ANNA)
    text_path = f"/coach/anvandare/{world['ids']['anna']}/texter/{world['ids']['shared']}"
    assert carl.get(text_path).status_code == 200

    response = post_form(anna, f"/mina-uppgifter/coach/{world['ids']['anna_link']}/aterkalla",
                         {}, form_path="/mina-uppgifter/coach")
    assert response.status_code == 302
    page = anna.get("/mina-uppgifter/coach").get_data(as_text=True)
    assert "Kopplingen är avslutad. Din jobbcoach kan inte längre läsa dina texter" in page
    assert "Återkallad" in page and "Tidigare kopplingar" in page  # the history stays

    for path in (text_path, f"/coach/anvandare/{world['ids']['anna']}"):
        refused = carl.get(path)
        assert refused.status_code == 403
        html = refused.get_data(as_text=True)
        assert "Du har inte längre åtkomst" in html and "Mitt delade cv" not in html
        assert "Anna Andersson" not in html.split("<main")[1]
    assert "Anna Andersson" not in carl.get("/coach/").get_data(as_text=True).split("<main")[1]
    assert len(services.reads_for_user(world["ids"]["anna"])) == 1

    (link,) = [x for x in links() if x.user_id == world["ids"]["anna"]]
    assert link.status == LinkStatus.REVOKED and link.ended_at is not None
    assert actions() == ["coach.text_read", "coach.link_revoked"]
    run_jobs()
    (message,) = outbox
    assert message["To"].addresses[0].addr_spec == CARL
    # The subject outlives delivery in the coach's mail log: no name of the user in it.
    assert message["Subject"] == "Din koppling till en användare i Cowrite har avslutats"
    body = message.get_body(("plain",)).get_content()
    assert "Anna Andersson har avslutat kopplingen med dig i Cowrite." in body
    assert "Du kan inte längre läsa" in body


def test_revoking_twice_says_so_and_changes_nothing(app, world):
    anna = as_(app, ANNA)
    path = f"/mina-uppgifter/coach/{world['ids']['anna_link']}/aterkalla"
    post_form(anna, path, {}, form_path="/mina-uppgifter/coach")
    response = post_form(anna, path, {}, form_path="/mina-uppgifter/coach")
    assert response.status_code == 302
    assert "Kopplingen är inte aktiv, så det finns ingenting att avsluta" in \
        anna.get("/mina-uppgifter/coach").get_data(as_text=True)
    assert actions() == ["coach.link_revoked"]


# --- adding a coach -------------------------------------------------------------------------

def test_add_page_explains_what_the_coach_sees_and_who_is_invoiced(client, anna):
    page = client.get("/mina-uppgifter/coach/ny").get_data(as_text=True)
    assert "<h1>Lägg till en jobbcoach</h1>" in page
    for text in ("Bara de texter som du har markerat med ”Dela med min jobbcoach”",
                 "Inget annat: inte ditt telefonnummer, inte ditt organisationsnummer",
                 "Så länge kopplingen är aktiv faktureras organisationen som din jobbcoach",
                 "Organisationen finns inte i listan", "Matchningsföretag", "Omställningsfond"):
        assert text in page, text


def test_add_coach_reviews_first_then_invites_by_mail(client, anna, outbox):
    review = add_coach(client, action="review")
    html = review.get_data(as_text=True)
    assert review.status_code == 200 and "<h1>Kontrollera och skicka inbjudan</h1>" in html
    assert "Ingenting har skickats än." in html
    assert "Nya Matchning AB faktureras för din användning av Cowrite" in html
    assert "556016-0680" in html and CARL in html and "Matchningsföretag" in html
    assert links() == [] and db.session.scalar(sa.select(sa.func.count(Organisation.id))) == 0

    response = add_coach(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/mina-uppgifter/coach")
    (link,) = links()
    org = db.session.get(Organisation, link.organisation_id)
    assert (org.name, org.org_number, org.kind) == ("Nya Matchning AB", "5560160680",
                                                    OrganisationKind.MATCHNINGSFORETAG)
    assert (link.user_id, link.coach_email, link.coach_name, link.status, link.coach_id) == (
        anna.id, CARL, "Carl Coach", LinkStatus.INVITED, None)
    assert link.invite_expires_at - link.invited_at == timedelta(days=14)
    page = client.get("/mina-uppgifter/coach").get_data(as_text=True)
    assert f"Vi har skickat en inbjudan till {CARL}. Länken i den gäller i 14 dagar." in page
    assert "Inbjuden" in page and "Skicka inbjudan igen" in page and "Avbryt inbjudan" in page

    run_jobs()
    (message,) = outbox
    assert message["To"].addresses[0].addr_spec == CARL
    assert message["Subject"] == "Anna Andersson bjuder in dig att vara jobbcoach i Cowrite"
    body = message.get_body(("plain",)).get_content()
    assert "Du kan läsa de texter som Anna Andersson väljer att dela med dig" in body
    assert "Nya Matchning AB faktureras" in body and "gäller i 14 dagar" in body
    path = invitation_path(message)
    token = path.rsplit("/", 1)[1]
    assert link.invite_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(db.session.scalars(sa.select(AuditEvent.details)).all())
    assert actions() == ["coach.invited"]
    assert actions("organisation.") == ["organisation.created"]


def test_an_existing_organisation_can_be_picked(client, anna, outbox):
    org = make_org("Rusta Företaget", "8020016641", OrganisationKind.FACKFORBUND)
    page = client.get("/mina-uppgifter/coach/ny").get_data(as_text=True)
    assert "Rusta Företaget (802001-6641)" in page
    assert add_coach(client, organisation=str(org.id), org_name="", org_number="",
                     org_kind="").status_code == 302
    (link,) = links()
    assert link.organisation_id == org.id
    assert db.session.scalar(sa.select(sa.func.count(Organisation.id))) == 1


BAD_ADDS = [
    ({"coach_email": ANNA}, "Det är din egen e-postadress"),
    ({"coach_email": ANNA.upper()}, "Det är din egen e-postadress"),
    ({"coach_email": "inte-en-adress"}, "i rätt format"),
    ({"coach_email": "carl@matchning.se\r\nBcc: alla@example.se"}, "utan mellanslag"),
    ({"coach_email": ""}, "Skriv jobbcoachens e-postadress."),
    ({"org_number": "556016-0681"}, "Kontrollera den sista siffran"),
    ({"org_number": "12345"}, "Kontrollera den sista siffran"),
    ({"org_number": ""}, "Skriv organisationsnumret."),
    ({"org_name": ""}, "Skriv organisationens namn."),
    ({"org_kind": ""}, "Välj vilken typ av organisation det är."),
    ({"org_kind": "hemlig"}, "Välj en av organisationstyperna i listan."),
    ({"organisation": ""}, "Välj organisationen som jobbcoachen arbetar för"),
    ({"organisation": "999999"}, "Välj en av organisationerna i listan"),
    ({"coach_name": "C" * 5000}, "Använd högst 200 tecken"),
    ({"coach_name": "Carl\x00"}, "tecken som inte går att använda"),
    ({"org_name": "X" * 300}, "Använd högst 200 tecken"),
]


@pytest.mark.parametrize("changes, message", BAD_ADDS)
@pytest.mark.parametrize("action", ["review", "confirm"])
def test_bad_input_gets_a_swedish_error_and_changes_nothing(client, anna, outbox, changes,
                                                            message, action):
    response = add_coach(client, action=action, **changes)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Det finns ett problem" in html and message in html
    assert links() == [] and db.session.scalar(sa.select(sa.func.count(Organisation.id))) == 0
    assert run_jobs() == 0 and outbox == []


def test_an_organisation_number_already_listed_must_be_picked_from_the_list(client, anna):
    make_org("Redan Här AB", "5560160680")
    response = add_coach(client)
    assert response.status_code == 200
    assert "Redan Här AB har redan det här organisationsnumret" in response.get_data(as_text=True)
    assert links() == []


def test_adding_a_coach_needs_a_recent_password(client, anna):
    with time_machine.travel(now() + timedelta(minutes=11), tick=False):
        response = client.get("/mina-uppgifter/coach/ny")
        assert response.status_code == 302
        assert "/bekrafta-losenord" in response.headers["Location"]
        response = client.post("/mina-uppgifter/coach/ny",
                               data={**ADD_FORM, "action": "confirm",
                                     "csrf_token": csrf_from(client, "/mina-uppgifter/coach")})
        assert response.status_code == 302 and "/bekrafta-losenord" in response.headers["Location"]
    assert links() == []


def test_a_new_coach_replaces_the_active_one_after_confirmation(app, world, outbox):
    anna = as_(app, ANNA)
    form = {"coach_email": NEW_COACH, "coach_name": "Nils Ny",
            "organisation": str(world["org"].id)}
    add_page = anna.get("/mina-uppgifter/coach/ny").get_data(as_text=True)
    assert "Du har redan en koppling till jobbcoachen Carl Coach" in add_page
    review = post_form(anna, "/mina-uppgifter/coach/ny", {**form, "action": "review"})
    html = review.get_data(as_text=True)
    assert "Din nuvarande koppling avslutas" in html
    assert "När du skickar inbjudan avslutas din koppling till Carl Coach" in html
    assert "Avsluta nuvarande koppling och skicka inbjudan" in html
    assert f'name="replaces" type="hidden" value="{world["anna_link"].id}"' in html
    assert [x.status for x in links()] == [LinkStatus.ACTIVE, LinkStatus.ACTIVE]

    response = post_form(anna, "/mina-uppgifter/coach/ny",
                         {**form, "action": "confirm", "replaces": str(world["anna_link"].id)})
    assert response.status_code == 302
    old, _, new = links()
    assert old.status == LinkStatus.REVOKED and new.status == LinkStatus.INVITED
    assert new.coach_email == NEW_COACH
    run_jobs()
    assert sorted(m["To"].addresses[0].addr_spec for m in outbox) == sorted([CARL, NEW_COACH])
    page = anna.get("/mina-uppgifter/coach").get_data(as_text=True)
    assert "Din tidigare koppling är avslutad." in page
    assert as_(app, CARL).get(f"/coach/anvandare/{world['ids']['anna']}").status_code == 403


def test_a_new_coach_cancels_a_waiting_invitation(app, client, anna, outbox):
    first = invite(client, outbox)
    (pending,) = links()
    again = {"coach_email": NEW_COACH, "organisation": str(pending.organisation_id)}
    review = add_coach(client, action="review", **again)
    assert "som fortfarande väntar på svar" in review.get_data(as_text=True)
    assert add_coach(client, replaces=str(pending.id), **again).status_code == 302
    old, new = links()
    assert (old.status, new.status) == (LinkStatus.CANCELLED, LinkStatus.INVITED)
    assert mails("coach_revoked") == []  # nobody had access, nobody to tell
    coach = app.test_client()
    assert coach.get(first).status_code == 302
    assert "Personen som skickade inbjudan har avbrutit den." in \
        app_get(coach, "/coach/inbjudan", 410)


def app_get(client, path: str, status: int) -> str:
    response = client.get(path)
    assert response.status_code == status, response.status_code
    return response.get_data(as_text=True)


def test_confirming_after_the_link_changed_shows_the_review_again(client, anna, outbox):
    org = make_org()
    form = {**ADD_FORM, "organisation": str(org.id)}
    make_link(anna, None, org, status=LinkStatus.INVITED, email=NEW_COACH)
    response = post_form(client, "/mina-uppgifter/coach/ny",
                         {**form, "action": "confirm", "replaces": ""})
    assert response.status_code == 200
    assert "Din koppling till jobbcoachen ändrades efter att sidan visades" in \
        response.get_data(as_text=True)
    assert [x.status for x in links()] == [LinkStatus.INVITED]


def test_edit_returns_to_the_filled_in_form(client, anna):
    response = add_coach(client, action="edit")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<h1>Lägg till en jobbcoach</h1>" in html
    assert f'value="{CARL}"' in html and 'value="Nya Matchning AB"' in html
    assert "Det finns ett problem" not in html and links() == []


def test_hostile_names_are_escaped_everywhere(client, anna, outbox):
    xss = "<script>alert(1)</script>"
    review = add_coach(client, action="review", coach_name=xss, org_name=xss)
    assert xss not in review.get_data(as_text=True)
    assert "&lt;script&gt;" in review.get_data(as_text=True)
    add_coach(client, coach_name=xss, org_name=xss)
    assert xss not in client.get("/mina-uppgifter/coach").get_data(as_text=True)
    run_jobs()
    assert xss not in outbox[0].get_body(("html",)).get_content()


# --- resend and cancel ----------------------------------------------------------------------

def test_resend_makes_a_new_link_and_the_old_one_stops_working(app, client, anna, outbox):
    first = invite(client, outbox)
    response = post_form(client, f"/mina-uppgifter/coach/{links()[0].id}/skicka-igen", {},
                         form_path="/mina-uppgifter/coach")
    assert response.status_code == 302
    assert "Vi har skickat inbjudan igen" in client.get("/mina-uppgifter/coach").get_data(
        as_text=True)
    run_jobs()
    (message,) = outbox
    second = invitation_path(message)
    assert second != first
    coach = app.test_client()
    coach.get(first)
    assert "Inbjudningslänken är inte giltig" in app_get(coach, "/coach/inbjudan", 404)
    coach.get(second)
    assert "Skapa ditt konto som jobbcoach" in app_get(coach, "/coach/inbjudan", 200)
    assert actions() == ["coach.invited", "coach.invitation_resent"]


def test_cancel_withdraws_the_invitation(app, client, anna, outbox):
    path = invite(client, outbox)
    link_id = links()[0].id
    response = post_form(client, f"/mina-uppgifter/coach/{link_id}/avbryt", {},
                         form_path="/mina-uppgifter/coach")
    assert response.status_code == 302
    page = client.get("/mina-uppgifter/coach").get_data(as_text=True)
    assert "Inbjudan är avbruten. Länken i den fungerar inte längre." in page
    assert "Inbjudan avbruten" in page and "Lägg till en jobbcoach" in page
    assert links()[0].status == LinkStatus.CANCELLED
    coach = app.test_client()
    coach.get(path)
    assert "Personen som skickade inbjudan har avbrutit den." in \
        app_get(coach, "/coach/inbjudan", 410)
    again = post_form(client, f"/mina-uppgifter/coach/{link_id}/skicka-igen", {},
                      form_path="/mina-uppgifter/coach")
    assert again.status_code == 302 and run_jobs() == 0
    assert "kan därför inte skickas igen" in client.get("/mina-uppgifter/coach").get_data(
        as_text=True)


# --- accepting the invitation ---------------------------------------------------------------

NEW_ACCOUNT = {"name": "Carl Coach", "password": "gurka-sommar-cykel-7",
               "password_confirm": "gurka-sommar-cykel-7", "accept_policy": "y"}


def test_new_coach_sets_a_password_and_accepts(app, client, anna, outbox):
    path = invite(client, outbox)
    coach = app.test_client()
    response = coach.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/coach/inbjudan")
    assert path.rsplit("/", 1)[1] not in response.headers["Location"]
    page = app_get(coach, "/coach/inbjudan", 200)
    assert "Anna Andersson använder Cowrite" in page and "Skapa ditt konto som jobbcoach" in page
    assert "Nya Matchning AB faktureras" in page and f"e-postadressen {CARL}" in page

    bad = post_form(coach, "/coach/inbjudan", {**NEW_ACCOUNT, "password_confirm": "annat"})
    assert bad.status_code == 200 and "inte likadana" in bad.get_data(as_text=True)
    assert links()[0].status == LinkStatus.INVITED

    done = post_form(coach, "/coach/inbjudan", NEW_ACCOUNT)
    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"/coach/anvandare/{anna.id}")
    (link,) = links()
    carl = db.session.scalar(sa.select(User).where(User.email == CARL))
    assert (carl.role, carl.organisation_id, carl.name) == (Role.COACH, link.organisation_id,
                                                           "Carl Coach")
    assert carl.email_verified_at is not None and carl.policy_accepted_at is not None
    assert (link.status, link.coach_id) == (LinkStatus.ACTIVE, carl.id)
    assert link.accepted_at is not None
    assert "Du har godkänt inbjudan" in coach.get(done.headers["Location"]).get_data(
        as_text=True)
    run_jobs()
    (message,) = outbox
    assert message["To"].addresses[0].addr_spec == ANNA
    assert message["Subject"] == "Din jobbcoach har godkänt inbjudan"

    reused = app.test_client()
    reused.get(path)
    assert "Inbjudan har redan godkänts." in app_get(reused, "/coach/inbjudan", 410)
    assert "Aktiv" in client.get("/mina-uppgifter/coach").get_data(as_text=True)
    assert "Avsluta kopplingen med min jobbcoach" in client.get(
        "/mina-uppgifter/coach").get_data(as_text=True)


def test_existing_coach_logs_in_to_accept(app, client, anna, outbox):
    carl = make_user(CARL, name="Carl Coach", role="coach")
    path = invite(client, outbox)
    coach = app.test_client()
    coach.get(path)
    assert "Det finns redan ett jobbcoachkonto" in app_get(coach, "/coach/inbjudan", 200)
    wrong = post_form(coach, "/coach/inbjudan", {"password": "fel-losenord-1"})
    assert wrong.status_code == 200 and "Lösenordet är fel." in wrong.get_data(as_text=True)
    assert links()[0].status == LinkStatus.INVITED
    right = post_form(coach, "/coach/inbjudan", {"password": PASSWORD})
    assert right.status_code == 302
    assert (links()[0].status, links()[0].coach_id) == (LinkStatus.ACTIVE, carl.id)
    assert coach.get(f"/coach/anvandare/{anna.id}").status_code == 200


def test_logged_in_coach_accepts_with_one_button(app, client, anna, outbox):
    make_user(CARL, name="Carl Coach", role="coach")
    path = invite(client, outbox)
    coach = as_(app, CARL)
    coach.get(path)
    assert "Du är inloggad som " + CARL in app_get(coach, "/coach/inbjudan", 200)
    assert post_form(coach, "/coach/inbjudan", {}).status_code == 302
    assert links()[0].status == LinkStatus.ACTIVE


@pytest.mark.parametrize("who, explanation", [
    ("user", "Du är inloggad med ett konto som inte är ett jobbcoachkonto"),
    ("other_coach", "Inbjudan skickades till en annan e-postadress"),
])
def test_invitation_opened_by_the_wrong_account_is_refused(app, client, anna, outbox, who,
                                                           explanation):
    make_user(DORA, name="Dora Dahl", role="coach")
    make_user(BO, name="Bo Berg")
    path = invite(client, outbox)
    other = as_(app, BO if who == "user" else DORA)
    other.get(path)
    refused = other.get("/coach/inbjudan")
    assert refused.status_code == 403
    assert explanation in refused.get_data(as_text=True)
    assert "Ingenting har ändrats." in refused.get_data(as_text=True)
    post = post_form(other, "/coach/inbjudan", {}, form_path="/konto/")
    assert post.status_code == 403
    assert links()[0].status == LinkStatus.INVITED and links()[0].coach_id is None
    assert "coach.link_accepted" not in actions()


def test_invitation_to_an_address_with_a_user_account_is_refused(app, client, anna, outbox):
    make_user(CARL, name="Carl som användare")
    path = invite(client, outbox)
    coach = app.test_client()
    coach.get(path)
    response = post_form(coach, "/coach/inbjudan", {"password": PASSWORD},
                         form_path="/logga-in")
    assert response.status_code == 403
    assert "redan hör till ett användarkonto" in response.get_data(as_text=True)
    assert links()[0].status == LinkStatus.INVITED
    assert db.session.scalar(sa.select(User.role).where(User.email == CARL)) == Role.USER


def test_expired_invitation_is_refused_and_the_job_marks_it(app, client, anna, outbox):
    path = invite(client, outbox)
    coach = app.test_client()
    with time_machine.travel(now() + timedelta(days=14, minutes=1), tick=False):
        coach.get(path)
        assert "Inbjudan har gått ut. En inbjudan gäller i 14 dagar." in \
            app_get(coach, "/coach/inbjudan", 410)
        assert login(client).status_code == 302  # the old session has timed out
        page = client.get("/mina-uppgifter/coach").get_data(as_text=True)
        assert "Inbjudan har gått ut" in page and "Skicka inbjudan igen" not in page
        assert expire_invitations() == 1
        assert expire_invitations() == 0  # idempotent
    (link,) = links()
    assert link.status == LinkStatus.EXPIRED and link.ended_at is not None
    assert actions() == ["coach.invited", "coach.invitation_expired"]


def test_unknown_or_oversized_invitation_tokens(app):
    client = app.test_client()
    client.get("/coach/inbjudan/" + "x" * 43)
    assert "Inbjudningslänken är inte giltig" in app_get(client, "/coach/inbjudan", 404)
    client.get("/coach/inbjudan/" + "y" * 5000)
    assert "Inbjudningslänken är inte giltig" in app_get(client, "/coach/inbjudan", 404)
    assert app_get(client, "/coach/inbjudan", 404)  # nothing in the session


def test_a_pending_invitation_gives_no_access(app, client, anna, outbox):
    make_user(CARL, name="Carl Coach", role="coach")
    invite(client, outbox)
    add_text(anna, "Delat", shared=True)
    assert as_(app, CARL).get(f"/coach/anvandare/{anna.id}").status_code == 404


# --- services other features use ------------------------------------------------------------

def test_billing_goes_to_the_active_coachs_organisation(app, ctx, world):
    anna, org = world["anna"], world["org"]
    own = make_org("Egen Fond", "2021005489", OrganisationKind.OMSTALLNINGSFOND)
    anna.organisation_id = own.id
    db.session.commit()
    assert billing_organisation_for(anna) == org.id
    create_text(anna, "Nytt", TextKind.CV, "x", share=False)
    db.session.commit()
    event = db.session.scalars(sa.select(UsageEvent).order_by(UsageEvent.id.desc())).first()
    assert event.organisation_id == org.id
    services.revoke_link(anna, world["anna_link"])
    assert billing_organisation_for(anna) == own.id
    make_link(anna, None, org, status=LinkStatus.INVITED, email=NEW_COACH)
    assert billing_organisation_for(anna) == own.id  # an invitation pays for nothing


def test_correction_recipients_are_the_active_coach_and_the_organisation(ctx, world):
    anna, org = world["anna"], world["org"]
    assert services.correction_recipients_for(anna) == [(CARL, "Carl Coach")]
    org.contact_email = "faktura@matchning.se"
    db.session.commit()
    assert services.correction_recipients_for(anna) == [(CARL, "Carl Coach"),
                                                       ("faktura@matchning.se", "Matchning AB")]
    services.revoke_link(anna, world["anna_link"])
    assert services.correction_recipients_for(anna) == []


def test_end_links_for_user_ends_everything_at_once(ctx, world):
    anna = world["anna"]
    make_link(anna, None, world["org"], status=LinkStatus.INVITED, email=NEW_COACH)
    assert services.end_links_for_user(anna.id, reason="erasure") == 2
    db.session.commit()
    statuses = {x.coach_email: x.status for x in links() if x.user_id == anna.id}
    assert statuses == {CARL: LinkStatus.REVOKED, NEW_COACH: LinkStatus.CANCELLED}
    assert services.active_link_for_user(anna.id) is None
    history = [x.id for x in services.links_for_user(anna.id)]
    assert history == sorted(history, reverse=True) and len(history) == 2
    details = db.session.scalars(sa.select(AuditEvent.details).where(
        AuditEvent.action.startswith("coach."))).all()
    assert all(d["reason"] == "erasure" for d in details)
    assert len(mails("coach_revoked")) == 1


def test_pseudonymised_users_vanish_from_the_coach_area(app, world):
    anna = world["anna"]
    anna.status = AccountStatus.PSEUDONYMISED
    db.session.commit()
    carl = as_(app, CARL)
    assert "Anna" not in carl.get("/coach/").get_data(as_text=True).split("<main")[1]
    assert carl.get(f"/coach/anvandare/{anna.id}").status_code in (403, 404)


def test_audit_details_hold_ids_and_codes_only(client, anna, outbox):
    invite(client, outbox)
    for details in db.session.scalars(sa.select(AuditEvent.details)
                                      .where(AuditEvent.action.startswith("coach."))):
        for value in details.values():
            assert not isinstance(value, str) or re.fullmatch(r"[a-z_]+", value), details
