"""Coach sharing in real Chromium, in Swedish: a user adds a coach, the invitation arrives
through the real SMTP server, the coach creates an account, accepts and reads a shared text,
the user sees the read and revokes, and the coach's open page is refused on reload. axe-core
on every new page; screenshots of each."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (PASSWORD, check_axe, create_user, login_dpo_in_browser,
                                    login_in_browser, open_page, screenshot, unique_email,
                                    wait_for_mail)
from tests.conftest import enrol_totp, links_in, make_user

pytestmark = pytest.mark.browser

COACH_NAME = "Carl Coachsson"
TEXT_TITLE = "Cv för lagerjobb"
_REFUSALS = re.compile(r"Failed to load resource: the server responded with a status of "
                       r"(403|404|410)\b")


def heading(page):
    return page.get_by_role("heading", level=1)


def button(page, name: str):
    return page.get_by_role("main").get_by_role("button", name=name, exact=True)


def add_shared_text(live_server, user_id: int) -> int:
    from portal.db import db
    from portal.texts.models import Text, TextKind

    with live_server.app.app_context():
        text = Text(user_id=user_id, title=TEXT_TITLE, kind=TextKind.CV,
                    body="Truckkort A och B.\nFem år på lager.", shared_with_coach=True)
        secret = Text(user_id=user_id, title="Privat utkast", kind=TextKind.OVRIGT,
                      body="Inte för coachen.", shared_with_coach=False)
        db.session.add_all([text, secret])
        db.session.commit()
        text_id = text.id
        db.session.remove()
    return text_id


@pytest.fixture
def coach_page(browser, live_server):
    """A second browser (the coach's), with its own cookies. 403/404/410 pages are expected."""
    with open_page(browser, live_server, expected_console=_REFUSALS) as page:
        yield page


def test_add_coach_accept_read_see_the_log_revoke_and_refuse(page, coach_page, live_server,
                                                             worker, smtp_server):
    email, user_id = create_user(live_server, name="Anna Andersson")
    text_id = add_shared_text(live_server, user_id)
    coach_email = unique_email("coach")
    login_in_browser(page, email)

    # The user's coach page, before any coach.
    page.goto("/mina-uppgifter/coach")
    expect(heading(page)).to_have_text("Din jobbcoach")
    expect(page.get_by_text("Du har inte gett någon jobbcoach tillgång.")).to_be_visible()
    screenshot(page, "coach-mina-uppgifter-tom")
    check_axe(page)

    # Add a coach: the page explains what the coach sees and who is invoiced before saving.
    page.get_by_role("link", name="Lägg till en jobbcoach").click()
    expect(heading(page)).to_have_text("Lägg till en jobbcoach")
    main = page.get_by_role("main")
    expect(main.get_by_text("Inget annat: inte ditt telefonnummer")).to_be_visible()
    expect(main.get_by_text(re.compile("Så länge kopplingen är aktiv faktureras"))).to_be_visible()
    screenshot(page, "coach-lagg-till")
    check_axe(page)
    page.get_by_label("Jobbcoachens e-postadress").fill(coach_email)
    page.get_by_label("Jobbcoachens namn (frivilligt)").fill(COACH_NAME)
    page.get_by_label("Organisationen som jobbcoachen arbetar för").select_option(
        label="Organisationen finns inte i listan")
    page.get_by_label("Organisationens namn").fill("Lagerlyftet Matchning AB")
    page.get_by_label("Organisationsnummer", exact=True).fill("556016-0681")
    page.get_by_role("radio", name="Matchningsföretag").check()
    button(page, "Fortsätt").click()
    expect(page.get_by_role("alert")).to_contain_text("Kontrollera den sista siffran")
    screenshot(page, "coach-lagg-till-fel")
    check_axe(page)
    page.get_by_label("Organisationsnummer", exact=True).fill("556016-0680")
    button(page, "Fortsätt").click()

    expect(heading(page)).to_have_text("Kontrollera och skicka inbjudan")
    expect(page.get_by_text("Ingenting har skickats än.")).to_be_visible()
    expect(page.get_by_text(re.compile("Lagerlyftet Matchning AB faktureras"))).to_be_visible()
    screenshot(page, "coach-kontrollera")
    check_axe(page)
    button(page, "Skicka inbjudan").click()
    expect(page).to_have_url(re.compile(r"/mina-uppgifter/coach$"))
    expect(page.get_by_role("status")).to_contain_text(f"Vi har skickat en inbjudan till "
                                                       f"{coach_email}")
    expect(page.get_by_role("main").get_by_text("Inbjuden", exact=True)).to_be_visible()
    screenshot(page, "coach-mina-uppgifter-inbjuden")
    check_axe(page)

    # The invitation through the real worker and SMTP server.
    message = wait_for_mail(smtp_server, coach_email, subject_contains="bjuder in dig")
    assert "Anna Andersson bjuder in dig att vara jobbcoach i Cowrite" == message["Subject"]
    (link,) = [u for u in links_in(message) if "/coach/inbjudan/" in u]
    assert link.startswith(live_server.url + "/coach/inbjudan/")

    # The coach opens it in their own browser, creates an account and accepts.
    coach = coach_page
    coach.goto(link)
    expect(coach).to_have_url(re.compile(r"/coach/inbjudan$"))  # the token left the address
    expect(heading(coach)).to_have_text("Inbjudan att bli jobbcoach")
    expect(coach.locator(".lead")).to_contain_text("Anna Andersson använder Cowrite för att")
    screenshot(coach, "coach-inbjudan")
    check_axe(coach)
    expect(coach.get_by_label("För- och efternamn", exact=True)).to_have_value(COACH_NAME)
    coach.get_by_label("Lösenord", exact=True).fill(PASSWORD)
    coach.get_by_label("Upprepa lösenordet", exact=True).fill(PASSWORD)
    coach.get_by_role("checkbox", name=re.compile("Jag har läst integritetspolicyn")).check()
    button(coach, "Skapa konto och godkänn").click()

    expect(coach).to_have_url(re.compile(rf"/coach/anvandare/{user_id}$"))
    expect(heading(coach)).to_have_text("Anna Andersson")
    expect(coach.get_by_role("status")).to_contain_text("Du har godkänt inbjudan")
    expect(coach.get_by_role("link", name=TEXT_TITLE)).to_be_visible()
    expect(coach.get_by_text("Privat utkast")).to_have_count(0)
    screenshot(coach, "coach-anvandare")
    check_axe(coach)
    coach.get_by_role("link", name=TEXT_TITLE).click()
    expect(coach).to_have_url(re.compile(rf"/coach/anvandare/{user_id}/texter/{text_id}$"))
    expect(heading(coach)).to_have_text(TEXT_TITLE)
    expect(coach.get_by_text("Fem år på lager.")).to_be_visible()
    screenshot(coach, "coach-text")
    check_axe(coach)
    coach.goto("/coach/")
    expect(heading(coach)).to_have_text("Personer som delar texter med dig")
    expect(coach.get_by_role("link", name="Anna Andersson")).to_be_visible()
    screenshot(coach, "coach-start")
    check_axe(coach)

    # The invitation link is spent.
    coach.goto(link)
    expect(heading(coach)).to_have_text("Inbjudan kan inte användas")
    expect(coach.get_by_text("Inbjudan har redan godkänts.")).to_be_visible()
    screenshot(coach, "coach-inbjudan-anvand")
    check_axe(coach)

    # The user is told by mail and sees the read in the log.
    wait_for_mail(smtp_server, email, subject_contains="har godkänt inbjudan")
    page.reload()
    log = page.get_by_role("table", name=re.compile("Varje gång en jobbcoach har läst"))
    expect(log.get_by_role("cell", name=TEXT_TITLE)).to_be_visible()
    expect(log.get_by_role("cell", name=COACH_NAME)).to_be_visible()
    expect(page.get_by_role("main").get_by_text("Aktiv", exact=True)).to_be_visible()
    screenshot(page, "coach-mina-uppgifter-aktiv")
    check_axe(page)

    # The coach has the text open; the user revokes with one click.
    coach.goto(f"/coach/anvandare/{user_id}/texter/{text_id}")
    expect(heading(coach)).to_have_text(TEXT_TITLE)
    button(page, "Avsluta kopplingen med min jobbcoach").click()
    expect(page.get_by_role("status")).to_contain_text("Kopplingen är avslutad.")
    expect(page.get_by_role("main").get_by_text("Återkallad", exact=True)).to_be_visible()
    screenshot(page, "coach-mina-uppgifter-aterkallad")
    check_axe(page)

    response = coach.reload()
    assert response.status == 403
    expect(heading(coach)).to_have_text("Du har inte längre åtkomst")
    expect(coach.get_by_text("Fem år på lager.")).to_have_count(0)
    screenshot(coach, "coach-atkomst-upphort")
    check_axe(coach)
    revoked = wait_for_mail(smtp_server, coach_email, subject_contains="har avslutats")
    assert "Du kan inte längre läsa" in revoked.get_body(("plain",)).get_content()


def test_invoice_basis_page_passes_axe(page, live_server):
    from portal.billing.models import Organisation, OrganisationKind, UsageEvent
    from portal.clock import STOCKHOLM, now
    from portal.db import db

    dpo_email = unique_email("dso")
    _, user_id = create_user(live_server, name="Anna Andersson")
    with live_server.app.app_context():
        make_user(email=dpo_email, password=PASSWORD, name="Dag Dso", role="dpo")
        secret = enrol_totp(dpo_email)
        org = Organisation(name="Lagerlyftet Matchning AB", org_number="5560160680",
                           kind=OrganisationKind.MATCHNINGSFORETAG)
        db.session.add(org)
        db.session.flush()
        db.session.add(UsageEvent(user_id=user_id, organisation_id=org.id, at=now()))
        db.session.commit()
        db.session.remove()
    month = now().astimezone(STOCKHOLM).strftime("%Y-%m")
    login_dpo_in_browser(page, dpo_email, secret)
    page.goto("/dso/fakturaunderlag")
    expect(heading(page)).to_have_text("Fakturaunderlag")
    page.get_by_label("Månad").fill(month)
    button(page, "Visa").click()
    table = page.get_by_role("table")
    expect(table.get_by_role("rowheader", name="Lagerlyftet Matchning AB")).to_be_visible()
    expect(table.get_by_role("cell", name="556016-0680")).to_be_visible()
    screenshot(page, "fakturaunderlag")
    check_axe(page)
