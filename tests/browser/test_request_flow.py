"""Issue 6 end to end in Chromium: a signed erasure request with a JPEG, the receipt mail, the
DPO logging in with TOTP, the queue, the ID copy, the approval; axe on every new page."""
from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import (PASSWORD, check_axe, create_user, login_dpo_in_browser,
                                    login_in_browser, open_page, screenshot, wait_for_mail)
from tests.conftest import enrol_totp, make_user

pytestmark = pytest.mark.browser


def id_photo(tmp_path) -> str:
    path = tmp_path / "korkort.jpg"
    image = Image.new("RGB", (900, 600), (190, 170, 150))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (59.0, 19.0, 0.0)}  # GPS, which must not survive
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    path.write_bytes(out.getvalue())
    return str(path)


def make_dpo(live_server) -> tuple[str, str]:
    email = "dso-webb@exempel.se"
    with live_server.app.app_context():
        make_user(email=email, name="Dag Dataskyddsombud", role="dpo")
        secret = enrol_totp(email)
        from portal.db import db

        db.session.remove()
    return email, secret


def test_signed_erasure_request_to_dpo_approval(page, browser, live_server, worker,
                                                smtp_server, tmp_path):
    email, user_id = create_user(live_server, name="Anna Andersson")
    login_in_browser(page, email)
    page.goto("/mina-rattigheter/begaran")
    screenshot(page, "begaran-start")
    check_axe(page)
    page.goto("/mina-rattigheter/begaran/radering")
    screenshot(page, "begaran-radering")
    check_axe(page)
    page.get_by_label("Ditt fullständiga namn som underskrift").fill("anna  andersson")
    page.get_by_label(re.compile("^Jag intygar")).check()
    page.get_by_label("Ditt lösenord").fill(PASSWORD)
    page.get_by_label("Kopia av din id-handling").set_input_files(id_photo(tmp_path))
    page.get_by_role("button", name="Skicka begäran om radering").click()
    expect(page).to_have_url(re.compile(r"/mina-rattigheter/begaran/\d+$"))
    reference = page.get_by_role("heading", level=1).inner_text()
    match = re.search(r"DSR-\d{4}-\d{6}", page.content())
    assert match, reference
    screenshot(page, "begaran-visa")
    check_axe(page)
    receipt = wait_for_mail(smtp_server, email)
    assert match.group(0) in receipt.get_body(("plain",)).get_content()

    dpo_email, secret = make_dpo(live_server)
    with open_page(browser, live_server) as dpo:
        login_dpo_in_browser(dpo, dpo_email, secret, on_code_page=check_axe)
        row = dpo.get_by_role("row").filter(has_text=match.group(0))
        expect(row).to_be_visible()
        screenshot(dpo, "dso-ko")
        check_axe(dpo)
        row.get_by_role("link").first.click()
        expect(dpo.get_by_text("verifierad", exact=False).first).to_be_visible()
        image = dpo.get_by_role("img", name=re.compile("sida 1"))
        expect(image).to_be_visible()
        assert dpo.evaluate("img => img.naturalWidth", image.element_handle()) == 900
        screenshot(dpo, "dso-granska")
        check_axe(dpo)
        dpo.get_by_role("button", name="Bevilja begäran").click()
        expect(dpo.get_by_text("Beviljad").first).to_be_visible()
        expect(dpo.get_by_text("Raderingen är köad")).to_be_visible()
        screenshot(dpo, "dso-beviljad")
        check_axe(dpo)
        dpo.goto("/dso/oversikt")
        screenshot(dpo, "dso-oversikt")
        check_axe(dpo)

    with live_server.app.app_context():
        from portal.db import db
        from portal.requests.models import RequestStatus, RequestUpload, RightsRequest

        request_row = db.session.scalars(sa.select(RightsRequest)
                                         .where(RightsRequest.reference == match.group(0))).one()
        upload = db.session.scalars(sa.select(RequestUpload)
                                    .where(RequestUpload.request_id == request_row.id)).one()
        assert request_row.status == RequestStatus.APPROVED
        assert upload.blob_id is None and upload.destroyed_at is not None and upload.sha256
        db.session.remove()


def test_other_request_kinds_completion_and_totp_enrolment_pass_axe(page, browser,
                                                                    live_server):
    email, user_id = create_user(live_server, name="Bo Berg")
    with live_server.app.app_context():
        from portal.clock import now
        from portal.db import db
        from portal.requests.deadlines import due_date
        from portal.requests.models import RequestKind, RequestStatus, RightsRequest

        received = now()
        req = RightsRequest(reference="DSR-2026-000950", user_id=user_id,
                            kind=RequestKind.RESTRICTION, status=RequestStatus.NEEDS_COMPLETION,
                            received_at=received, due_on=due_date(received), details="Text")
        db.session.add(req)
        db.session.commit()
        request_id = req.id
        db.session.remove()
    login_in_browser(page, email)
    for kind in ("begransning", "rattelse", "invandning"):
        page.goto(f"/mina-rattigheter/begaran/{kind}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        screenshot(page, f"begaran-{kind}")
        check_axe(page)
    page.goto(f"/mina-rattigheter/begaran/{request_id}")
    expect(page.get_by_role("heading", name="Skicka det som saknas")).to_be_visible()
    screenshot(page, "begaran-komplettera")
    check_axe(page)

    with live_server.app.app_context():
        make_user(email="ny-dso@exempel.se", name="Nora Ny", role="dpo")
        from portal.db import db

        db.session.remove()
    with open_page(browser, live_server) as dpo:
        dpo.goto("/logga-in")
        dpo.get_by_label("E-postadress", exact=True).fill("ny-dso@exempel.se")
        dpo.get_by_label("Lösenord", exact=True).fill(PASSWORD)
        dpo.get_by_role("main").get_by_role("button", name="Logga in", exact=True).click()
        expect(dpo).to_have_url(re.compile(r"/logga-in/kod$"))
        expect(dpo.locator("img[src^='data:image/svg+xml']")).to_be_visible()  # the QR code
        screenshot(dpo, "dso-totp-registrera")
        check_axe(dpo)
