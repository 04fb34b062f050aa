"""Account journeys in real Chromium, in Swedish: register, confirm by mail, log in and out,
wrong passwords, password reset through mail, and the language switch."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (CREATE_ACCOUNT, EMAIL_LABEL, LOG_IN, LOG_OUT, NAME_LABEL,
                                    NEW_PASSWORD_LABEL, PASSWORD, PASSWORD_LABEL, REPEAT_LABEL,
                                    create_user, login_in_browser, mailed_link, unique_email,
                                    wait_for_mail)

pytestmark = pytest.mark.browser

MY_DATA = "Mina uppgifter"
CHECK_EMAIL = "Titta i din e-post"
THERE_IS_A_PROBLEM = "Det finns ett problem"
WRONG_CREDENTIALS = "E-postadressen eller lösenordet är fel."


def label(page, text):
    return page.get_by_label(text, exact=True)


def button(page, text):
    return page.get_by_role("main").get_by_role("button", name=text, exact=True)


def heading(page):
    return page.get_by_role("heading", level=1)


def test_register_confirm_login_logout(page, live_server, worker, smtp_server):
    email = unique_email()
    name = "Nora Nyström"

    page.goto("/registrera")
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(heading(page)).to_have_text("Skapa ett konto")
    label(page, NAME_LABEL).fill(name)
    label(page, EMAIL_LABEL).fill(email)
    label(page, PASSWORD_LABEL).fill(PASSWORD)
    label(page, REPEAT_LABEL).fill(PASSWORD)
    page.get_by_role("group", name="Hur fick du tillgång till Cowrite?").get_by_role(
        "radio", name="Stöd och Matchning (Arbetsförmedlingen)", exact=True).check()
    page.get_by_role("checkbox", name="Jag har läst integritetspolicyn och förstår hur mina "
                     "uppgifter hanteras.", exact=True).check()
    button(page, CREATE_ACCOUNT).click()

    expect(page).to_have_url(re.compile(r"/registrera/kolla-e-posten$"))
    expect(heading(page)).to_have_text(CHECK_EMAIL)

    # The real worker sends the mail through the real SMTP server, in the account's language.
    message = wait_for_mail(smtp_server, email, subject_contains="Bekräfta din e-postadress")
    assert f"Hej {name}" in message.get_body(preferencelist=("plain",)).get_content()
    link = mailed_link(message)
    assert link.startswith(live_server.url + "/l/")

    page.goto(link)
    expect(page).to_have_url(re.compile(r"/logga-in$"))  # the token left the address bar
    expect(page.get_by_role("status")).to_have_text(
        "Din e-postadress är bekräftad. Nu kan du logga in.")
    expect(heading(page)).to_have_text(LOG_IN)

    label(page, EMAIL_LABEL).fill(email)
    label(page, PASSWORD_LABEL).fill(PASSWORD)
    button(page, LOG_IN).click()

    expect(page).to_have_url(re.compile(r"/mina-uppgifter$"))
    expect(heading(page)).to_have_text("Mina uppgifter")
    main = page.get_by_role("main")
    expect(main.get_by_text(name, exact=True)).to_be_visible()
    expect(main.get_by_text(email, exact=True)).to_be_visible()
    expect(main.get_by_text("Stöd och Matchning (Arbetsförmedlingen)", exact=True)).to_be_visible()
    banner = page.get_by_role("banner")
    expect(banner.get_by_text(f"Inloggad som {name}", exact=True)).to_be_visible()

    banner.get_by_role("button", name=LOG_OUT, exact=True).click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("status")).to_have_text("Du är utloggad.")
    expect(heading(page)).to_have_text("Dina uppgifter hos Cowrite")
    expect(banner.get_by_role("link", name=LOG_IN, exact=True)).to_be_visible()

    page.goto("/konto/")
    expect(page).to_have_url(re.compile(r"/logga-in\?next=%2Fkonto%2F$"))
    expect(heading(page)).to_have_text(LOG_IN)
    expect(page.get_by_role("status")).to_have_text("Logga in för att se sidan.")


def test_wrong_password_shows_error_summary(page, live_server):
    email, _ = create_user(live_server)

    page.goto("/logga-in")
    label(page, EMAIL_LABEL).fill(email)
    label(page, PASSWORD_LABEL).fill("inte-mitt-losenord")
    button(page, LOG_IN).click()

    expect(page).to_have_url(re.compile(r"/logga-in$"))
    summary = page.get_by_role("alert")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text(THERE_IS_A_PROBLEM)
    expect(summary.get_by_role("listitem")).to_have_text([WRONG_CREDENTIALS])
    expect(summary).to_be_focused()  # portal.js moves focus there so that it is announced
    expect(label(page, EMAIL_LABEL)).to_have_value(email)
    expect(label(page, PASSWORD_LABEL)).to_have_value("")

    # A field error: the summary links to the field, and following the link focuses it.
    button(page, LOG_IN).click()
    summary = page.get_by_role("alert")
    link = summary.get_by_role("link", name="Skriv ditt lösenord.", exact=True)
    expect(link).to_have_attribute("href", "#password")
    password = label(page, PASSWORD_LABEL)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).not_to_be_focused()
    link.click()
    expect(password).to_be_focused()
    expect(heading(page)).to_have_text(LOG_IN)


def test_password_reset_through_mail(page, live_server, worker, smtp_server):
    email, _ = create_user(live_server)
    new_password = "ett-helt-nytt-losenord-7"

    page.goto("/logga-in")
    page.get_by_role("main").get_by_role("link", name="Har du glömt ditt lösenord?",
                                         exact=True).click()
    expect(page).to_have_url(re.compile(r"/glomt-losenord$"))
    label(page, EMAIL_LABEL).fill(email)
    button(page, "Skicka länk").click()
    expect(heading(page)).to_have_text(CHECK_EMAIL)

    link = mailed_link(wait_for_mail(smtp_server, email, subject_contains="Välj ett nytt lösenord"))
    page.goto(link)
    expect(page).to_have_url(re.compile(r"/nytt-losenord$"))  # the token left the address bar
    expect(heading(page)).to_have_text("Välj ett nytt lösenord")
    label(page, NEW_PASSWORD_LABEL).fill(new_password)
    label(page, REPEAT_LABEL).fill(new_password)
    button(page, "Spara lösenordet").click()

    expect(page).to_have_url(re.compile(r"/logga-in$"))
    expect(page.get_by_role("status")).to_have_text(
        "Ditt nya lösenord är sparat. Logga in med det.")
    # The account holder is told that the password changed.
    wait_for_mail(smtp_server, email, subject_contains="Ditt lösenord har bytts")

    # The link worked once.
    response = page.goto(link)
    assert response.status == 410
    expect(heading(page)).to_have_text("Länken går inte att använda")

    # The old password no longer works ...
    page.goto("/logga-in")
    label(page, EMAIL_LABEL).fill(email)
    label(page, PASSWORD_LABEL).fill(PASSWORD)
    button(page, LOG_IN).click()
    expect(page.get_by_role("alert")).to_contain_text(WRONG_CREDENTIALS)

    # ... the new one does.
    login_in_browser(page, email, new_password)
    expect(heading(page)).to_have_text(MY_DATA)


def test_language_switch(page, live_server):
    page.goto("/logga-in")
    html = page.locator("html")
    banner = page.get_by_role("banner")
    expect(html).to_have_attribute("lang", "sv")
    expect(heading(page)).to_have_text(LOG_IN)

    banner.get_by_role("button", name="In English", exact=True).click()
    expect(page).to_have_url(re.compile(r"/logga-in$"))  # stays on the same page
    expect(html).to_have_attribute("lang", "en")
    expect(heading(page)).to_have_text("Log in")
    expect(banner.get_by_role("link", name="Create account", exact=True)).to_be_visible()
    expect(banner.get_by_role("button", name="På svenska", exact=True)).to_have_attribute(
        "lang", "sv")

    # The choice is remembered (a cookie) on the next page.
    page.goto("/registrera")
    expect(html).to_have_attribute("lang", "en")
    expect(heading(page)).to_have_text("Create an account")

    banner.get_by_role("button", name="På svenska", exact=True).click()
    expect(page).to_have_url(re.compile(r"/registrera$"))
    expect(html).to_have_attribute("lang", "sv")
    expect(heading(page)).to_have_text("Skapa ett konto")
    expect(banner.get_by_role("button", name="In English", exact=True)).to_have_attribute(
        "lang", "en")
    page.goto("/")
    expect(html).to_have_attribute("lang", "sv")
    expect(heading(page)).to_have_text("Dina uppgifter hos Cowrite")
