"""Exports in Chromium with the real worker: request, watch the bar reach 100 %, download the
ZIP and open both files; the same without JavaScript (the page refreshes itself)."""
from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (ROOT, check_axe, create_user, login_in_browser, screenshot,
                                    wait_for_mail)

pytestmark = pytest.mark.browser

PAGE = "/mina-uppgifter/export"
TITLE = "Brev till <Volvo> & Scania"
HOSTILE = '<img src="file:///etc/passwd"> <link href="http://169.254.169.254/">'


def add_text(live_server, user_id: int) -> None:
    from portal.db import db
    from portal.texts.models import Text, TextKind

    with live_server.app.app_context():
        db.session.add(Text(user_id=user_id, title=TITLE, kind=TextKind.PERSONLIGT_BREV,
                            body=f"Hej!\n\nJag söker tjänsten. {HOSTILE}"))
        db.session.commit()
        db.session.remove()


def check_zip(data: bytes, tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["README.txt", "cowrite-export.json",
                                              "cowrite-export.pdf"]
        document = json.loads(archive.read("cowrite-export.json").decode("utf-8"))
        pdf = archive.read("cowrite-export.pdf")
    schema = json.loads((ROOT / "portal/exports/schema/export-v1.json").read_text("utf-8"))
    Draft202012Validator(schema).validate(document)
    texts = next(c for c in document["categories"] if c["key"] == "texts")["data"]["texts"]
    assert [t["title"] for t in texts] == [TITLE] and HOSTILE in texts[0]["body"]
    (tmp_path / "export.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "export.pdf"), "-"],
                          capture_output=True, check=True).stdout.decode("utf-8")
    text = " ".join(text.split())
    assert "Dina uppgifter hos Cowrite" in text and TITLE in text and HOSTILE in text


def test_request_an_export_watch_the_bar_reach_100_and_download_it(
        page, live_server, worker, smtp_server, tmp_path):
    email, user_id = create_user(live_server)
    add_text(live_server, user_id)
    login_in_browser(page, email)
    page.goto(PAGE)
    expect(page.get_by_role("heading", level=1)).to_have_text("Ladda ner mina uppgifter")
    expect(page.get_by_text("Du har inte begärt någon kopia av dina uppgifter.").or_(
        page.get_by_role("table"))).to_be_visible()
    check_axe(page)
    screenshot(page, "export-start")

    page.get_by_role("button", name="Skapa en export").click()
    expect(page.get_by_role("status").first).to_contain_text("Din export är köad")
    bar = page.get_by_role("progressbar", name=re.compile("Hur långt exporten EXP-"))
    expect(bar).to_be_visible()
    check_axe(page)
    expect(bar).to_have_attribute("value", "100", timeout=60_000)
    expect(page.locator("[data-export-status-text]")).to_have_text("Klar")
    link = page.get_by_role("link", name="Ladda ner exporten")
    expect(link).to_be_visible()
    screenshot(page, "export-klar")
    check_axe(page)

    with page.expect_download() as info:
        link.click()
    download = info.value
    assert re.fullmatch(r"cowrite-export-\d{4}-\d\d-\d\d\.zip", download.suggested_filename)
    check_zip(Path(download.path()).read_bytes(), tmp_path)

    mail = wait_for_mail(smtp_server, email, "Din export är klar")
    body = mail.get_body(("plain",)).get_content()
    assert f"{live_server.url}{PAGE}" in body and "ladda-ner" not in body


def test_without_javascript_the_page_refreshes_until_the_export_is_ready(
        browser, live_server, worker):
    email, _ = create_user(live_server)
    context = browser.new_context(locale="sv-SE", base_url=live_server.url,
                                  java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        login_in_browser(page, email)
        page.goto(PAGE)
        page.get_by_role("button", name="Skapa en export").click()
        expect(page.get_by_role("cell", name=re.compile("Köad|Pågår"))).to_be_visible()
        # No script runs: the <noscript> refresh reloads the page until the row is ready.
        expect(page.get_by_role("link", name="Ladda ner exporten")).to_be_visible(
            timeout=60_000)
        expect(page.get_by_role("cell", name=re.compile("^Klar"))).to_be_visible()
        screenshot(page, "export-klar-utan-javascript")
    finally:
        context.close()
