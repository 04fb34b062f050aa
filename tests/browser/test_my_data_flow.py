"""'Mina uppgifter' in Chromium: cookies before the choice, the data page, a correction,
opting out of the newsletter, a text; axe on every new page, screenshots in sv and en."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import check_axe, create_user, login_in_browser, screenshot

pytestmark = pytest.mark.browser

NEW_PAGES = {
    "mina-uppgifter": "/mina-uppgifter",
    "mina-uppgifter-andra": "/mina-uppgifter/andra",
    "mina-uppgifter-e-post": "/mina-uppgifter/e-post",
    "mina-uppgifter-inloggningar": "/mina-uppgifter/inloggningar",
    "mina-uppgifter-logg": "/mina-uppgifter/logg",
    "marknadsforing": "/mina-uppgifter/marknadsforing",
    "texter": "/texter/",
    "texter-ny": "/texter/ny",
    "kakor-installningar": "/kakor/installningar",
    "mina-rattigheter": "/mina-rattigheter",
}


def cookie_names(page) -> set[str]:
    return {c["name"] for c in page.context.cookies()}


def test_no_non_essential_cookie_or_storage_before_the_choice_and_rejecting_works(
        page, live_server):
    page.goto("/")
    banner = page.get_by_role("region", name=re.compile("Kakor"))
    expect(banner).to_be_visible()
    accept = banner.get_by_role("button", name="Acceptera alla")
    reject = banner.get_by_role("button", name="Endast nödvändiga")
    assert accept.get_attribute("class") == reject.get_attribute("class")
    assert cookie_names(page) <= {live_server.app.config["SESSION_COOKIE_NAME"]}
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    screenshot(page, "kakruta")
    check_axe(page)

    reject.click()
    expect(page.get_by_role("region", name=re.compile("Kakor"))).to_have_count(0)
    consent = {c["name"]: c for c in page.context.cookies()}["cookie_consent"]
    assert consent["value"] == "v1.f0.s0.m0" and consent["httpOnly"]
    assert cookie_names(page) <= {live_server.app.config["SESSION_COOKIE_NAME"],
                                  "cookie_consent"}


def test_walk_my_data_correct_the_name_opt_out_and_write_a_text(page, live_server):
    email, _ = create_user(live_server)
    login_in_browser(page, email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Mina uppgifter")
    main = page.get_by_role("main")
    for title in ["Profil", "Dina texter", "Inloggningshistorik", "Händelselogg"]:
        expect(main.get_by_role("heading", level=2, name=re.compile(title))).to_be_visible()
    main.get_by_text("Varför vi har det här, och hur länge").first.click()
    expect(main.get_by_text("Rättslig grund").first).to_be_visible()

    main.get_by_role("link", name="Rätta namn, telefon eller organisationsnummer").click()
    page.get_by_label("För- och efternamn").fill("Anna Berg-Öberg")
    page.get_by_label("Organisationsnummer (frivilligt)").fill("556016-0681")
    page.get_by_role("button", name="Spara rättelserna").click()
    expect(page.get_by_role("alert")).to_contain_text("Kontrollera den sista siffran")
    page.get_by_label("Organisationsnummer (frivilligt)").fill("556016-0680")
    page.get_by_role("button", name="Spara rättelserna").click()
    expect(page.get_by_role("status")).to_have_text("Dina rättelser är sparade.")
    expect(page.get_by_role("main").get_by_text("Anna Berg-Öberg", exact=True)).to_be_visible()
    expect(page.get_by_text("556016-0680", exact=True)).to_be_visible()

    page.goto("/mina-uppgifter/marknadsforing")
    page.get_by_role("button", name="Send me the newsletter").or_(
        page.get_by_role("button", name="Skicka nyhetsbrevet till mig")).first.click()
    page.get_by_role("button", name="Tacka nej till nyhetsbrevet").click()
    expect(page.get_by_role("button", name=re.compile("nyhetsbrevet"))).not_to_have_text(
        "Tacka nej till nyhetsbrevet")
    history = page.get_by_role("table")
    expect(history.get_by_role("row")).to_have_count(3)  # header + on + off
    check_axe(page)

    page.goto("/texter/ny")
    page.get_by_label("Rubrik").fill("Brev till <Exempelbolaget>")
    page.get_by_role("radio", name="Personligt brev").check()
    page.get_by_label("Text", exact=True).fill("Hej!\n\nJag söker tjänsten.")
    page.get_by_role("button", name="Spara texten").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Brev till <Exempelbolaget>")
    screenshot(page, "text-visa")
    check_axe(page)
    page.goto("/mina-uppgifter")
    expect(page.get_by_role("link", name="Brev till <Exempelbolaget>")).to_be_visible()
    screenshot(page, "mina-uppgifter-ifylld")


@pytest.mark.parametrize("path", NEW_PAGES.values(), ids=NEW_PAGES.keys())
def test_new_page_passes_axe_in_swedish_and_english(page, live_server, path):
    email, _ = create_user(live_server)
    login_in_browser(page, email)
    name = next(k for k, v in NEW_PAGES.items() if v == path)
    for lang in ("sv", "en"):
        if lang == "en":
            page.get_by_role("button", name="In English").click()
        response = page.goto(path)
        assert response.status == 200, f"{path} answered {response.status}"
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        screenshot(page, f"{name}-{lang}")
        check_axe(page)
