"""Invoice bases: numbers against a hand-computed fixture, CSV, PDF, pseudonyms, the fetcher."""
from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy import event

from portal.audit import AuditEvent
from portal.auth.models import AccountStatus
from portal.billing import services
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.billing.services import Month, OrganisationTotal
from portal.db import db
from tests.conftest import login, login_dpo, make_user

DPO = "dso@cowrite.se"
NOV = Month(2026, 11)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def fixture_data():
    """The hand-computed fixture (November 2026, Swedish time):

    Alfa Matchning AB: Anna 3 (one at 00:30 on 1 Nov Swedish time, still 31 Oct in UTC),
    Bo 1, Cecilia (erased, pseudonymised) 2 -> 3 users, 6 texts.
    Beta Fack: Dan 4, Anna 1 (she changed coach during the month) -> 2 users, 5 texts.
    Not counted: Bo's 2 October texts (one at 23:59 on 31 Oct Swedish time), Bo's text at
    00:30 on 1 Dec Swedish time, Dan's non-billable event, Eva's self-paid text (1).
    """
    alfa = Organisation(name="Alfa Matchning AB", org_number="5560160680",
                        kind=OrganisationKind.MATCHNINGSFORETAG)
    beta = Organisation(name="Beta Fack", org_number="8020016641",
                        kind=OrganisationKind.FACKFORBUND)
    db.session.add_all([alfa, beta])
    db.session.commit()
    anna = make_user("anna@example.se", name="Anna Andersson")
    bo = make_user("bo@example.se", name="Bo Berg")
    cecilia = make_user("cecilia@example.se", name="Cecilia Cederlund")
    dan = make_user("dan@example.se", name="Dan Dahl")
    eva = make_user("eva@example.se", name="Eva Ek")
    cecilia.status = AccountStatus.PSEUDONYMISED
    events = [
        (anna, alfa, utc(2026, 10, 31, 23, 30)), (anna, alfa, utc(2026, 11, 5, 10)),
        (anna, alfa, utc(2026, 11, 15, 10)), (anna, beta, utc(2026, 11, 25, 9)),
        (bo, alfa, utc(2026, 11, 20, 12)), (bo, alfa, utc(2026, 10, 10, 12)),
        (bo, alfa, utc(2026, 10, 31, 22, 59)), (bo, alfa, utc(2026, 11, 30, 23, 30)),
        (cecilia, alfa, utc(2026, 11, 2, 8)), (cecilia, alfa, utc(2026, 11, 3, 8)),
        (dan, beta, utc(2026, 11, 1, 12)), (dan, beta, utc(2026, 11, 2, 12)),
        (dan, beta, utc(2026, 11, 3, 12)), (dan, beta, utc(2026, 11, 4, 12)),
        (eva, None, utc(2026, 11, 6, 12)),
    ]
    db.session.add_all([UsageEvent(user_id=u.id, organisation_id=o.id if o else None,
                                   kind="text_created", at=at) for u, o, at in events])
    db.session.add(UsageEvent(user_id=dan.id, organisation_id=beta.id, kind="login",
                              at=utc(2026, 11, 5, 12)))
    db.session.commit()
    return {"alfa": alfa, "beta": beta, "cecilia": cecilia}


@pytest.fixture
def dpo(client):
    make_user(DPO, name="Dag Dso", role="dpo")
    assert login_dpo(client, DPO).status_code == 302
    return client


# --- the numbers ----------------------------------------------------------------------------

def test_totals_equal_the_hand_computed_fixture(ctx, fixture_data):
    alfa, beta = fixture_data["alfa"], fixture_data["beta"]
    assert services.organisation_totals(NOV) == [
        OrganisationTotal(alfa.id, "Alfa Matchning AB", "5560160680",
                          OrganisationKind.MATCHNINGSFORETAG, users=3, events=6),
        OrganisationTotal(beta.id, "Beta Fack", "8020016641", OrganisationKind.FACKFORBUND,
                          users=2, events=5),
    ]
    assert services.unattributed_count(NOV) == 1
    pseudonym = services.pseudonym_for(fixture_data["cecilia"].id)
    basis = services.invoice_basis(alfa, NOV)
    assert [(row.label, row.events) for row in basis.rows] == [
        ("Anna Andersson", 3), ("Bo Berg", 1), (pseudonym, 2)]
    assert basis.total == 6
    assert [(r.label, r.events) for r in services.invoice_basis(beta, NOV).rows] == [
        ("Anna Andersson", 1), ("Dan Dahl", 4)]
    october = services.organisation_totals(Month(2026, 10))
    assert [(t.name, t.users, t.events) for t in october] == [("Alfa Matchning AB", 1, 2)]
    december = services.invoice_basis(alfa, Month(2026, 12))
    assert [(r.label, r.events) for r in december.rows] == [("Bo Berg", 1)]


def test_totals_are_counted_by_the_database_not_in_python(ctx, fixture_data):
    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.lower())

    engine = db.session.get_bind().engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        services.organisation_totals(NOV)
        services.unattributed_count(NOV)
        services.invoice_basis(fixture_data["alfa"], NOV)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    touching = [s for s in statements if "usage_events" in s]
    assert len(touching) == 4
    assert all("count(" in s for s in touching)
    assert sum("group by" in s for s in touching) == 2


def test_months_are_swedish_calendar_months():
    march = Month(2026, 3)
    assert march.start == utc(2026, 2, 28, 23)  # CET
    assert march.end == utc(2026, 3, 31, 22)  # CEST after 29 March
    assert services.parse_month("2026-11") == NOV
    for bad in ("2026-13", "2026-00", "2026-1", "26-11", "november", "", None, "1999-12",
                "2026-11-01", "２０２６-11", "2026-11\n"):
        assert services.parse_month(bad) is None, bad


# --- the page -------------------------------------------------------------------------------

def test_dpo_sees_one_row_per_organisation_with_links(dpo, fixture_data):
    response = dpo.get("/dso/fakturaunderlag?month=2026-11")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>Fakturaunderlag</h1>" in html and "Användning i november 2026" in html
    alfa, beta = fixture_data["alfa"].id, fixture_data["beta"].id
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th><td>(.*?)</td><td>(.*?)</td>"
                      r"<td>(\d+)</td><td>(\d+)</td>", html)
    assert rows == [("Alfa Matchning AB", "556016-0680", "Matchningsföretag", "3", "6"),
                    ("Beta Fack", "802001-6641", "Fackförbund", "2", "5")]
    assert re.search(r"<th scope=\"row\">Totalt</th>.*<td>11</td>", html)
    assert f"/dso/fakturaunderlag/2026-11/{alfa}.csv" in html
    assert f"/dso/fakturaunderlag/2026-11/{beta}.pdf" in html
    assert "1 text skapades av användare som själva betalar för Cowrite" in html
    assert "Cecilia" not in html


def test_the_default_month_is_the_last_complete_one(dpo, fixture_data):
    with time_machine.travel(utc(2026, 12, 10, 9), tick=False):
        assert login_dpo(dpo, DPO).status_code in (200, 302)
        html = dpo.get("/dso/fakturaunderlag").get_data(as_text=True)
    assert 'value="2026-11"' in html and "Alfa Matchning AB" in html


@pytest.mark.parametrize("month, message", [
    ("2026-13", "Skriv månaden som år och månad med bindestreck"),
    ("november", "Skriv månaden som år och månad med bindestreck"),
    ("", "Skriv en månad, till exempel 2026-11."),
    ("2" * 5000, "Använd högst 20 tecken"),
])
def test_a_bad_month_gets_a_swedish_error(dpo, fixture_data, month, message):
    response = dpo.get("/dso/fakturaunderlag", query_string={"month": month})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Det finns ett problem" in html and message in html
    assert "Alfa Matchning AB" not in html


@pytest.mark.parametrize("path", ["/dso/fakturaunderlag/2026-13/{alfa}.csv",
                                  "/dso/fakturaunderlag/x/{alfa}.pdf",
                                  "/dso/fakturaunderlag/2026-11/999999.csv",
                                  "/dso/fakturaunderlag/2026-11/999999.pdf"])
def test_downloads_with_a_bad_month_or_organisation_are_404(dpo, fixture_data, path):
    assert dpo.get(path.format(alfa=fixture_data["alfa"].id)).status_code == 404


@pytest.mark.parametrize("role", ["user", "coach"])
def test_only_the_dpo_gets_invoice_bases(app, fixture_data, role):
    client = app.test_client()
    make_user(f"{role}-x@example.se", role=role)
    login(client, f"{role}-x@example.se")
    for suffix in ("", "/2026-11/{alfa}.csv", "/2026-11/{alfa}.pdf"):
        path = "/dso/fakturaunderlag" + suffix.format(alfa=fixture_data["alfa"].id)
        assert client.get(path).status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "billing.basis_downloaded")) == 0


# --- CSV and PDF ----------------------------------------------------------------------------

def test_csv_parses_and_sums_correctly(dpo, fixture_data):
    alfa = fixture_data["alfa"]
    response = dpo.get(f"/dso/fakturaunderlag/2026-11/{alfa.id}.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="fakturaunderlag-2026-11-org{alfa.id}.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Månad", "Organisation", "Organisationsnummer", "Användare",
                       "Skapade texter"]
    *data, total = rows[1:]
    with dpo.application.app_context():
        pseudonym = services.pseudonym_for(fixture_data["cecilia"].id)
    assert [(r[3], int(r[4])) for r in data] == [("Anna Andersson", 3), ("Bo Berg", 1),
                                                 (pseudonym, 2)]
    assert all(r[:3] == ["2026-11", "Alfa Matchning AB", "556016-0680"] for r in rows[1:])
    assert total[3] == "Totalt" and int(total[4]) == sum(int(r[4]) for r in data) == 6
    assert b"Cecilia" not in body and b"\r\n" in body
    (audit,) = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "billing.basis_downloaded")).all()
    assert audit.details == {"organisation_id": alfa.id, "month": "2026-11", "format": "csv",
                             "rows": 3}
    assert audit.subject_id is None and audit.actor_id is not None


def test_csv_cells_are_never_formulas(dpo, fixture_data):
    user = make_user("formel@example.se", name="=HYPERLINK(\"http://x\";\"klicka\")")
    db.session.add(UsageEvent(user_id=user.id, organisation_id=fixture_data["alfa"].id,
                              at=utc(2026, 11, 9, 9)))
    db.session.commit()
    text = dpo.get(f"/dso/fakturaunderlag/2026-11/{fixture_data['alfa'].id}.csv").data.decode(
        "utf-8-sig")
    cells = [row[3] for row in csv.reader(io.StringIO(text), delimiter=";")]
    assert "'=HYPERLINK(\"http://x\";\"klicka\")" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def pdf_text(data: bytes) -> str:
    result = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data,
                            capture_output=True, check=True)
    return result.stdout.decode()


def test_pdf_holds_the_organisation_month_rows_total_and_page_numbers(dpo, fixture_data):
    alfa = fixture_data["alfa"]
    response = dpo.get(f"/dso/fakturaunderlag/2026-11/{alfa.id}.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="fakturaunderlag-2026-11-org{alfa.id}.pdf"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.data.startswith(b"%PDF-")
    text = pdf_text(response.data)
    with dpo.application.app_context():
        pseudonym = services.pseudonym_for(fixture_data["cecilia"].id)
    for expected in ("Fakturaunderlag", "Alfa Matchning AB", "556016-0680", "november 2026",
                     "Anna Andersson", "Bo Berg", pseudonym, "Sida 1 av 1"):
        assert expected in text, expected
    assert re.search(r"Totalt\s+6\b", text)
    assert "Cecilia" not in text
    assert db.session.scalars(sa.select(AuditEvent.details).where(
        AuditEvent.action == "billing.basis_downloaded")).one()["format"] == "pdf"


def test_pdf_escapes_hostile_names(ctx, fixture_data):
    user = make_user("x@example.se", name="<b>Fet</b> & <img src=http://evil.example/x.png>")
    db.session.add(UsageEvent(user_id=user.id, organisation_id=fixture_data["beta"].id,
                              at=utc(2026, 11, 9, 9)))
    db.session.commit()
    with ctx.app.test_request_context():
        data = services.basis_pdf(services.invoice_basis(fixture_data["beta"], NOV))
    assert "<b>Fet</b> & <img src=http://evil.example/x.png>" in pdf_text(data)


# --- pseudonyms and the PDF fetcher ---------------------------------------------------------

def test_pseudonym_is_a_stable_keyed_hash(app, ctx):
    first = services.pseudonym_for(1)
    assert re.fullmatch(r"Pseudonym [0-9A-F]{8}", first)
    assert services.pseudonym_for(1) == first != services.pseudonym_for(2)
    original = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-key"
    try:
        assert services.pseudonym_for(1) != first
    finally:
        app.config["SECRET_KEY"] = original


def test_the_fetcher_serves_static_files_only():
    fetcher = services.static_only_fetcher()
    css = (services.STATIC_DIR / "css" / "portal.css").resolve()
    response = fetcher.fetch(css.as_uri())
    assert response.read() == css.read_bytes() and response.content_type == "text/css"
    refused = ["http://example.com/a.css", "https://example.com/a.png", "data:text/css,body{}",
               "file:///etc/passwd", (services.STATIC_DIR / ".." / "portal" / "config.py")
               .as_uri(), "file://evil.example/etc/passwd", "ftp://example.com/x",
               (services.STATIC_DIR / "css").as_uri(),
               (services.STATIC_DIR / "css" / "finns-inte.css").as_uri()]
    for url in refused:
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_render_pdf_never_reaches_outside_static():
    html = ('<html lang="sv"><head><title>t</title>'
            '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head>'
            '<body><img src="file:///etc/hostname" alt="x"><p>Hej</p></body></html>')
    data = services.render_pdf(html)
    assert data.startswith(b"%PDF-") and "Hej" in pdf_text(data)


def test_page_counter_css():
    assert services.page_counter_css("Sida %(page)s av %(pages)s") == \
        '"Sida " counter(page) " av " counter(pages)'
    assert services.page_counter_css('Page "%(page)s"\\') == \
        '"Page \\"" counter(page) "\\"\\\\"'
