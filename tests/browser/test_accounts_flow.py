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

MY_ACCOUNT = re.compile(r"^\s*(Mitt konto|My account)\s*$")
CHECK_EMAIL = re.compile(r"(Kolla|Kontrollera|Titta i) din e-post|Check your e-mail", re.I)
CONFIRMED = re.compile(r"bekräftad|confirmed", re.I)
LOGGED_OUT = re.compile(r"utloggad|loggat ut|logged out", re.I)
THERE_IS_A_PROBLEM = re.compile(r"Det finns ett problem|Något är fel|There is a problem", re.I)
WRONG_CREDENTIALS = re.compile(r"(e-postadressen|lösenordet).*(fel|stämmer inte)|"
                               r"e-mail address or the password is wrong", re.I)
ENTER_PASSWORD = re.compile(r"(Ange|Skriv|Fyll i).*lösenord|Enter your password", re.I)
SEND_LINK = re.compile(r"^\s*(Skicka länk(en)?|Send link)\s*$")
SAVE_PASSWORD = re.compile(r"^\s*(Spara( lösenordet)?|Save password)\s*$")
PASSWORD_CHANGED_SUBJECT = re.compile(r"ändrats|bytts|changed", re.I)
PASSWORD_SAVED = re.compile(r"nya lösenord.*sparat|new password is saved", re.I)


def test_register_confirm_login_logout(page, live_server, worker, smtp_server):
    email = unique_email()
    name = "Nora Nyström"

    page.goto("/registrera")
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.get_by_role("heading", level=1)).to_have_text(CREATE_ACCOUNT)
    page.get_by_label(NAME_LABEL).fill(name)
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(PASSWORD)
    page.get_by_label(REPEAT_LABEL).fill(PASSWORD)
    page.get_by_role("radio", name=re.compile("Stöd och Matchning")).check()
    page.get_by_role("checkbox").check()
    page.get_by_role("main").get_by_role("button", name=CREATE_ACCOUNT).click()

    expect(page).to_have_url(re.compile(r"/registrera/kolla-e-posten$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(CHECK_EMAIL)

    message = wait_for_mail(smtp_server, email)
    assert name in message.get_body(preferencelist=("plain",)).get_content()
    link = mailed_link(message)
    assert link.startswith(live_server.url + "/l/")

    page.goto(link)
    expect(page).to_have_url(re.compile(r"/logga-in$"))
    expect(page.get_by_role("status")).to_contain_text(CONFIRMED)
    expect(page.get_by_role("heading", level=1)).to_have_text(LOG_IN)

    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name=LOG_IN).click()

    expect(page).to_have_url(re.compile(r"/konto/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(MY_ACCOUNT)
    expect(page.get_by_role("main").get_by_text(name, exact=True)).to_be_visible()
    expect(page.get_by_role("main").get_by_text(email, exact=True)).to_be_visible()

    page.get_by_role("banner").get_by_role("button", name=LOG_OUT).click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("status")).to_contain_text(LOGGED_OUT)
    expect(page.get_by_role("banner").get_by_role("link", name=LOG_IN)).to_be_visible()

    page.goto("/konto/")
    expect(page).to_have_url(re.compile(r"/logga-in\?next=%2Fkonto%2F$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(LOG_IN)


def test_wrong_password_shows_error_summary(page, live_server):
    email, _ = create_user(live_server)

    page.goto("/logga-in")
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill("inte-mitt-losenord")
    page.get_by_role("main").get_by_role("button", name=LOG_IN).click()

    expect(page).to_have_url(re.compile(r"/logga-in$"))
    summary = page.get_by_role("alert")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text(THERE_IS_A_PROBLEM)
    expect(summary).to_contain_text(WRONG_CREDENTIALS)
    expect(summary).to_be_focused()  # portal.js moves focus there so it is announced
    expect(page.get_by_label(EMAIL_LABEL)).to_have_value(email)

    # A field error: the summary links to the field, and following the link focuses it.
    page.get_by_label(PASSWORD_LABEL).fill("")
    page.get_by_role("main").get_by_role("button", name=LOG_IN).click()
    summary = page.get_by_role("alert")
    link = summary.get_by_role("link", name=ENTER_PASSWORD)
    expect(link).to_have_attribute("href", "#password")
    password = page.get_by_label(PASSWORD_LABEL)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).not_to_be_focused()
    link.click()
    expect(password).to_be_focused()
    expect(page.get_by_role("heading", level=1)).to_have_text(LOG_IN)


def test_password_reset_through_mail(page, live_server, worker, smtp_server):
    email, _ = create_user(live_server)
    new_password = "ett-helt-nytt-losenord-7"

    page.goto("/logga-in")
    page.get_by_role("main").get_by_role("link", name=re.compile(
        r"Glömt (ditt )?lösenord|Forgot your password", re.I)).click()
    expect(page).to_have_url(re.compile(r"/glomt-losenord$"))
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_role("main").get_by_role("button", name=SEND_LINK).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(CHECK_EMAIL)

    link = mailed_link(wait_for_mail(smtp_server, email))
    page.goto(link)
    expect(page).to_have_url(re.compile(r"/nytt-losenord$"))  # the token left the address bar
    page.get_by_label(NEW_PASSWORD_LABEL).fill(new_password)
    page.get_by_label(REPEAT_LABEL).fill(new_password)
    page.get_by_role("main").get_by_role("button", name=SAVE_PASSWORD).click()

    expect(page).to_have_url(re.compile(r"/logga-in$"))
    expect(page.get_by_role("status")).to_contain_text(PASSWORD_SAVED)

    # The link worked once.
    response = page.goto(link)
    assert response.status == 410

    # The old password no longer works ...
    page.goto("/logga-in")
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name=LOG_IN).click()
    expect(page.get_by_role("alert")).to_contain_text(WRONG_CREDENTIALS)

    # ... the new one does.
    login_in_browser(page, email, new_password)
    expect(page.get_by_role("heading", level=1)).to_have_text(MY_ACCOUNT)

    # The account holder is told that the password changed.
    wait_for_mail(smtp_server, email, subject_contains=PASSWORD_CHANGED_SUBJECT)


def test_language_switch(page, live_server):
    page.goto("/logga-in")
    html = page.locator("html")
    banner = page.get_by_role("banner")
    expect(html).to_have_attribute("lang", "sv")

    banner.get_by_role("button", name="In English").click()
    expect(page).to_have_url(re.compile(r"/logga-in$"))  # stays on the same page
    expect(html).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(banner.get_by_role("link", name="Create account")).to_be_visible()
    english_switch = banner.get_by_role("button", name="På svenska")
    expect(english_switch).to_have_attribute("lang", "sv")

    # The choice is remembered on the next page.
    page.goto("/registrera")
    expect(html).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")

    banner.get_by_role("button", name="På svenska").click()
    expect(page).to_have_url(re.compile(r"/registrera$"))
    expect(html).to_have_attribute("lang", "sv")
    expect(banner.get_by_role("button", name="In English")).to_be_visible()
    page.goto("/")
    expect(html).to_have_attribute("lang", "sv")
