"""axe-core (WCAG 2.1 A and AA) on every page built so far, anonymous and logged in.

Each page is also saved as a full-page screenshot in test-artifacts/screenshots/.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (CREATE_ACCOUNT, check_axe, create_user, login_in_browser,
                                    screenshot)

pytestmark = pytest.mark.browser

ANONYMOUS_PAGES = {
    "start": "/",
    "integritetspolicy": "/integritetspolicy",
    "cookies": "/cookies",
    "tillganglighet": "/tillganglighet",
    "kontakt": "/kontakt",
    "logga-in": "/logga-in",
    "registrera": "/registrera",
    "glomt-losenord": "/glomt-losenord",
    "kolla-e-posten": "/registrera/kolla-e-posten",
}

LOGGED_IN_PAGES = {
    "konto": "/konto/",
    "konto-losenord": "/konto/losenord",
    "bekrafta-losenord": "/bekrafta-losenord",
}


@pytest.mark.parametrize("path", ANONYMOUS_PAGES.values(), ids=ANONYMOUS_PAGES.keys())
def test_anonymous_page(page, live_server, path):
    response = page.goto(path)
    assert response.status == 200, f"{path} answered {response.status}"
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    name = next(k for k, v in ANONYMOUS_PAGES.items() if v == path)
    screenshot(page, name)
    check_axe(page)


def test_not_found_page(page, live_server):
    response = page.goto("/den-har-sidan-finns-inte")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    screenshot(page, "404")
    check_axe(page)


def test_registration_errors(page, live_server):
    page.goto("/registrera")
    page.get_by_role("main").get_by_role("button", name=CREATE_ACCOUNT, exact=True).click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("link")).to_have_count(6)  # one per field left empty
    expect(summary).to_be_focused()
    screenshot(page, "registrera-fel")
    check_axe(page)


@pytest.mark.parametrize("path", LOGGED_IN_PAGES.values(), ids=LOGGED_IN_PAGES.keys())
def test_logged_in_page(page, live_server, path):
    email, _ = create_user(live_server)
    login_in_browser(page, email)
    response = page.goto(path)
    assert response.status == 200, f"{path} answered {response.status}"
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    name = next(k for k, v in LOGGED_IN_PAGES.items() if v == path)
    screenshot(page, name)
    check_axe(page)
