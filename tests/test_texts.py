"""Texts: writing, reading, changing, deleting and sharing, and who may do any of it."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.audit import AuditEvent
from portal.auth.models import User
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.clock import now
from portal.db import db
from portal.texts import services
from portal.texts.models import BODY_MAX, Text, TextKind
from tests.conftest import csrf_from, login, login_dpo, make_user, post_form

FORM = {"title": "Brev till Skogsbolaget", "kind": "personligt_brev",
        "body": "Hej!\r\n\r\nJag söker tjänsten som skogsarbetare.\r\nMed vänlig hälsning"}
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def add_text(user: User, title: str = "Mitt cv", kind: TextKind = TextKind.CV,
             body: str = "Erfarenhet:\nSkogsarbete", shared: bool = False,
             at: datetime | None = None) -> Text:
    stamp = at or now()
    text = Text(user_id=user.id, title=title, kind=kind, body=body, shared_with_coach=shared,
                created_at=stamp, updated_at=stamp)
    db.session.add(text)
    db.session.commit()
    return text


def all_texts() -> list[Text]:
    db.session.expire_all()
    return db.session.scalars(sa.select(Text).order_by(Text.id)).all()


def audit_actions(prefix: str = "text.") -> list[tuple[str, dict]]:
    rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                              .order_by(AuditEvent.id))
    return [(row.action, row.details) for row in rows]


def usage_events() -> list[UsageEvent]:
    return db.session.scalars(sa.select(UsageEvent).order_by(UsageEvent.id)).all()


def create(client, **changes):
    return post_form(client, "/texter/ny", {**FORM, **changes})


@pytest.fixture
def anna(client):
    user = make_user()
    assert login(client).status_code == 302
    return user


@pytest.fixture
def others_text():
    bo = make_user(email="bo@example.se", name="Bo Berg")
    return add_text(bo, title="Bos hemliga brev", body="Bara för Bo", shared=True)


# --- the whole life of a text --------------------------------------------------------------

def test_empty_list_invites_writing_a_first_text(client, anna):
    html = client.get("/texter/").get_data(as_text=True)
    assert "<h1>Mina texter</h1>" in html
    assert "Du har inga texter ännu." in html
    assert 'href="/texter/ny"' in html and "Ny text" in html
    assert "<table" not in html


def test_create_show_list_edit_and_delete(client, anna):
    form_page = client.get("/texter/ny").get_data(as_text=True)
    assert "Dela med min jobbcoach" in form_page
    assert "Bara den här texten blir läsbar för den jobbcoach" in form_page
    for label in ("Personligt brev", "CV", "Övrigt"):
        assert label in form_page

    response = create(client)
    (text,) = all_texts()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/texter/{text.id}")
    assert (text.user_id, text.title) == (anna.id, FORM["title"])
    assert text.kind == TextKind.PERSONLIGT_BREV
    assert text.body == "Hej!\n\nJag söker tjänsten som skogsarbetare.\nMed vänlig hälsning"
    assert text.shared_with_coach is False

    shown = client.get(f"/texter/{text.id}").get_data(as_text=True)
    assert "Din text är sparad." in shown
    assert f"<h1>{FORM['title']}</h1>" in shown
    assert f'<div class="text-body">{text.body}</div>' in shown  # line breaks kept as is
    assert "Personligt brev" in shown and "Nej, bara du kan läsa den här texten." in shown
    for action in ("Ändra", "Radera", "Dela med min jobbcoach"):
        assert action in shown

    listed = client.get("/texter/").get_data(as_text=True)
    assert "Du har 1 text." in listed and FORM["title"] in listed and "Delas inte" in listed

    response = post_form(client, f"/texter/{text.id}/andra",
                         {"title": "Nytt brev", "kind": "ovrigt", "body": "Ny text"})
    assert response.status_code == 302
    assert "Dina ändringar är sparade." in client.get(f"/texter/{text.id}").get_data(as_text=True)
    (text,) = all_texts()
    assert (text.title, text.kind, text.body) == ("Nytt brev", TextKind.OVRIGT, "Ny text")

    confirm = client.get(f"/texter/{text.id}/radera").get_data(as_text=True)
    assert "Vill du radera ”Nytt brev”?" in confirm
    assert 'class="button button-warning"' in confirm
    assert [t.id for t in all_texts()] == [text.id]  # asking is not deleting

    response = post_form(client, f"/texter/{text.id}/radera", {})
    assert response.status_code == 302 and response.headers["Location"].endswith("/texter/")
    assert all_texts() == []
    assert "Texten är raderad." in client.get("/texter/").get_data(as_text=True)
    assert client.get(f"/texter/{text.id}").status_code == 404

    assert audit_actions() == [("text.created", {"text_id": text.id, "shared": False}),
                               ("text.updated", {"text_id": text.id}),
                               ("text.deleted", {"text_id": text.id})]


def test_edit_form_is_filled_in_and_edit_moves_last_changed(client, anna):
    text = add_text(anna, title="Gammal rubrik", body="Rad ett\nRad två",
                    at=now() - timedelta(days=3))
    before = text.updated_at
    page = client.get(f"/texter/{text.id}/andra").get_data(as_text=True)
    assert "<h1>Ändra texten</h1>" in page
    assert 'value="Gammal rubrik"' in page and "Rad ett\nRad två</textarea>" in page
    assert re.search(r'value="cv"[^>]*checked|checked[^>]*value="cv"', page)

    post_form(client, f"/texter/{text.id}/andra",
              {"title": "Ny rubrik", "kind": "cv", "body": "Rad ett"})
    (text,) = all_texts()
    assert text.updated_at > before + timedelta(days=2)
    assert text.created_at == before


def test_index_lists_newest_first_in_stockholm_time_with_a_count(client, anna):
    add_text(anna, title="Äldst", at=datetime(2024, 1, 15, 12, 0, tzinfo=timezone.utc))
    add_text(anna, title="Nyast", at=datetime(2024, 7, 1, 8, 30, tzinfo=timezone.utc),
             shared=True)
    add_text(anna, title="Mitten", at=datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc))
    html = client.get("/texter/").get_data(as_text=True)
    assert "Du har 3 texter." in html
    assert html.index("Nyast") < html.index("Mitten") < html.index("Äldst")
    assert "10:30" in html  # 08:30 UTC is 10:30 in Stockholm in summer
    assert "13:00" in html  # 12:00 UTC is 13:00 in Stockholm in winter
    row = html[html.index("Nyast"):html.index("Mitten")]
    assert "Delas" in row and "Delas inte" not in row


def test_list_and_count_services_only_see_the_users_own_texts(client, anna, others_text):
    mine = add_text(anna)
    assert [t.id for t in services.list_texts(anna.id)] == [mine.id]
    assert services.count_texts(anna.id) == 1
    assert services.get_own_text(anna.id, others_text.id) is None
    assert services.get_own_text(anna.id, mine.id) is mine
    (with_body,) = services.list_texts(anna.id, with_body=True)
    assert with_body.body == mine.body


def test_changing_services_refuse_someone_elses_text(client, anna, others_text):
    for change in (lambda: services.update_text(anna, others_text, "x", TextKind.CV, "y", False),
                   lambda: services.delete_text(anna, others_text),
                   lambda: services.set_shared(anna, others_text, False)):
        with pytest.raises(PermissionError):
            change()
    assert all_texts()[0].shared_with_coach is True and audit_actions() == []


# --- sharing --------------------------------------------------------------------------------

def test_share_toggle_flips_audits_and_explains(client, anna):
    text = add_text(anna)
    response = post_form(client, f"/texter/{text.id}/dela", {}, form_path=f"/texter/{text.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/texter/{text.id}")
    assert all_texts()[0].shared_with_coach is True
    page = client.get(f"/texter/{text.id}").get_data(as_text=True)
    assert "Texten delas nu. Din jobbcoach kan läsa den så länge kopplingen" in page
    assert "Sluta dela med min jobbcoach" in page
    assert "Ja, din jobbcoach kan läsa den här texten." in page

    post_form(client, f"/texter/{text.id}/dela", {}, form_path=f"/texter/{text.id}")
    assert all_texts()[0].shared_with_coach is False
    assert "Texten delas inte längre." in client.get(f"/texter/{text.id}").get_data(as_text=True)
    assert audit_actions() == [("text.share_changed", {"text_id": text.id, "shared": True}),
                               ("text.share_changed", {"text_id": text.id, "shared": False})]


def test_text_can_be_shared_when_created_and_unshared_when_edited(client, anna):
    create(client, share="y")
    (text,) = all_texts()
    assert text.shared_with_coach is True
    post_form(client, f"/texter/{text.id}/andra", {**FORM})  # checkbox left empty
    assert all_texts()[0].shared_with_coach is False
    assert audit_actions()[-1] == ("text.share_changed", {"text_id": text.id, "shared": False})


# --- usage for invoicing --------------------------------------------------------------------

def test_creating_records_usage_for_the_paying_organisation_but_editing_does_not(client, anna):
    union = Organisation(name="Skogsfacket", kind=OrganisationKind.FACKFORBUND)
    db.session.add(union)
    db.session.flush()
    db.session.get(User, anna.id).organisation_id = union.id
    db.session.commit()

    create(client)
    (text,) = all_texts()
    (usage,) = usage_events()
    assert (usage.user_id, usage.organisation_id, usage.kind) == (anna.id, union.id,
                                                                  "text_created")
    post_form(client, f"/texter/{text.id}/andra", {**FORM, "title": "Ändrad"})
    post_form(client, f"/texter/{text.id}/dela", {}, form_path=f"/texter/{text.id}")
    assert len(usage_events()) == 1


def test_usage_without_organisation_is_attributed_to_nobody(client, anna):
    create(client)
    (usage,) = usage_events()
    assert usage.organisation_id is None
    assert services.billing_organisation_for(anna) is None


# --- who may see what -----------------------------------------------------------------------

TEXT_ROUTES = [
    ("GET", "/texter/{id}"),
    ("GET", "/texter/{id}/andra"),
    ("POST", "/texter/{id}/andra"),
    ("GET", "/texter/{id}/radera"),
    ("POST", "/texter/{id}/radera"),
    ("POST", "/texter/{id}/dela"),
]
ALL_ROUTES = [("GET", "/texter/"), ("GET", "/texter/ny"), ("POST", "/texter/ny"), *TEXT_ROUTES]


def send(client, method: str, path: str, token: str | None):
    if method == "GET":
        return client.get(path)
    data = {**FORM, "share": "y"}
    if token:
        data["csrf_token"] = token
    return client.post(path, data=data)


@pytest.mark.parametrize("method,route", TEXT_ROUTES)
def test_another_users_text_is_404_on_every_route(client, anna, others_text, method, route):
    token = csrf_from(client, "/texter/ny")
    response = send(client, method, route.format(id=others_text.id), token)
    assert response.status_code == 404
    assert "Sidan finns inte" in response.get_data(as_text=True)
    (text,) = all_texts()
    assert (text.title, text.body, text.shared_with_coach) == ("Bos hemliga brev",
                                                               "Bara för Bo", True)
    assert audit_actions() == [] and usage_events() == []


@pytest.mark.parametrize("method,route", TEXT_ROUTES)
def test_a_text_that_does_not_exist_is_404(client, anna, method, route):
    token = csrf_from(client, "/texter/ny")
    assert send(client, method, route.format(id=987654), token).status_code == 404


@pytest.mark.parametrize("role", ["coach", "dpo"])
@pytest.mark.parametrize("method,route", ALL_ROUTES)
def test_coaches_and_dpos_get_404_everywhere(client, others_text, role, method, route):
    make_user(email=f"{role}@example.se", role=role)
    assert (login_dpo if role == "dpo" else login)(
        client, email=f"{role}@example.se").status_code == 302
    token = csrf_from(client, "/konto/")
    response = send(client, method, route.format(id=others_text.id), token)
    assert response.status_code == 404
    assert len(all_texts()) == 1 and usage_events() == []


@pytest.mark.parametrize("method,route", ALL_ROUTES)
def test_anonymous_visitors_are_sent_to_login(client, others_text, method, route):
    token = csrf_from(client, "/logga-in")
    path = route.format(id=others_text.id)
    response = send(client, method, path, token)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/logga-in?next=")
    assert len(all_texts()) == 1


@pytest.mark.parametrize("route", [r for m, r in ALL_ROUTES if m == "POST"])
def test_post_without_csrf_token_is_refused(client, anna, route):
    text = add_text(anna, title="Orörd")
    response = send(client, "POST", route.format(id=text.id), token=None)
    assert response.status_code == 400
    assert "Formuläret har gått ut" in response.get_data(as_text=True)
    (text,) = all_texts()
    assert (text.title, text.shared_with_coach) == ("Orörd", False)
    assert audit_actions() == [] and usage_events() == []


# --- hostile and faulty input ---------------------------------------------------------------

def test_markup_in_title_and_body_is_shown_escaped(client, anna):
    create(client, title=XSS, body=XSS)
    (text,) = all_texts()
    assert text.title == XSS  # stored as written, escaped when shown
    for path in ("/texter/", f"/texter/{text.id}", f"/texter/{text.id}/andra",
                 f"/texter/{text.id}/radera"):
        html = client.get(path).get_data(as_text=True)
        assert XSS not in html, path
        assert XSS_ESCAPED in html, path


def test_one_megabyte_body_is_refused_in_swedish_and_nothing_is_saved(client, anna):
    """As a multipart form, Werkzeug refuses the 1 MB text part (MAX_FORM_MEMORY_SIZE) with the
    413 page. Url-encoded (what the page's form sends), MAX_FORM_MEMORY_SIZE does not apply
    (Werkzeug: only multipart text parts), so the form itself answers, inline; were an
    app-wide cap on url-encoded bodies added, the 413 page would answer instead."""
    token = csrf_from(client, "/texter/ny")
    big = "a" * 1024 * 1024
    multipart = client.post("/texter/ny", content_type="multipart/form-data",
                            data={**FORM, "body": big, "csrf_token": token})
    assert multipart.status_code == 413
    html = multipart.get_data(as_text=True)
    assert "För mycket data" in html and "Det du skickade är för stort" in html

    urlencoded = client.post("/texter/ny", data={**FORM, "body": big, "csrf_token": token})
    html = urlencoded.get_data(as_text=True)
    if urlencoded.status_code == 413:
        assert "Det du skickade är för stort" in html
    else:
        assert urlencoded.status_code == 400
        assert f"Använd högst {BODY_MAX} tecken (du använde {len(big)})." in html
    assert all_texts() == [] and usage_events() == []


@pytest.mark.parametrize("length", [BODY_MAX + 1, 200_000])
def test_body_over_the_limit_gets_an_inline_swedish_error(client, anna, length):
    response = create(client, body="b" * length)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Det finns ett problem" in html
    assert f"Använd högst {BODY_MAX} tecken (du använde {length})." in html
    assert 'id="body-error"' in html
    assert all_texts() == [] and usage_events() == []


def test_body_of_exactly_the_limit_is_saved_with_line_breaks_counted_once(client, anna):
    body = ("x" * 98 + "\r\n") * (BODY_MAX // 99) + "y" * (BODY_MAX % 99)
    assert len(body.replace("\r\n", "\n")) == BODY_MAX < len(body)
    assert create(client, body=body).status_code == 302
    assert len(all_texts()[0].body) == BODY_MAX


def test_ten_thousand_character_title_gets_a_swedish_error(client, anna):
    response = create(client, title="T" * 10_000)
    assert response.status_code == 400
    assert "Använd högst 200 tecken (du använde 10000)." in response.get_data(as_text=True)
    assert all_texts() == []


def test_empty_fields_get_swedish_errors(client, anna):
    response = post_form(client, "/texter/ny", {"title": "  ", "body": "\r\n "},
                         form_path="/texter/ny")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    for message in ("Skriv en rubrik för texten.", "Välj vilken sorts text det är.",
                    "Skriv texten."):
        assert message in html
    assert all_texts() == [] and usage_events() == []


def test_invalid_kind_gets_a_swedish_error(client, anna):
    response = create(client, kind="roman")
    assert response.status_code == 400
    assert "Välj en av textsorterna i listan." in response.get_data(as_text=True)
    assert all_texts() == []


def test_failed_edit_changes_nothing(client, anna):
    text = add_text(anna, title="Orörd", body="Orörd text")
    response = post_form(client, f"/texter/{text.id}/andra",
                         {"title": "", "kind": "cv", "body": "Ny\x00text"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Skriv en rubrik för texten." in html
    assert "Texten innehåller tecken som inte går att använda." in html
    (text,) = all_texts()
    assert (text.title, text.body) == ("Orörd", "Orörd text")
    assert audit_actions() == []


# --- performance ----------------------------------------------------------------------------

def statements_for(client, path: str) -> list[str]:
    """The SQL statements one request issues (after a warm-up request)."""
    client.get(path)  # warm up: session touch, caches
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_index_query_count_does_not_grow_with_the_number_of_texts(app):
    few, many = app.test_client(), app.test_client()
    for client, email, n in ((few, "few@example.se", 2), (many, "many@example.se", 40)):
        user = make_user(email=email)
        for i in range(n):
            add_text(user, title=f"Text {i}", body="x" * 1000)
        login(client, email=email)
    few_sql, many_sql = statements_for(few, "/texter/"), statements_for(many, "/texter/")
    assert len(few_sql) == len(many_sql)
    on_texts = [s for s in many_sql if re.search(r"\bFROM texts\b", s)]
    assert len(on_texts) == 2  # the count and one page
    assert not any("texts.body" in s for s in on_texts)  # no bodies
    assert "Du har 40 texter." in many.get("/texter/").get_data(as_text=True)


def test_the_list_is_paged_fifty_at_a_time(client, anna):
    for i in range(60):
        add_text(anna, title=f"Text nummer {i:02d}", at=now() - timedelta(minutes=i))
    first = client.get("/texter/").get_data(as_text=True)
    assert "Du har 60 texter." in first and "Sida 1 av 2" in first
    assert "Text nummer 00" in first and "Text nummer 49" in first
    assert "Text nummer 50" not in first and 'href="/texter/?sida=2"' in first
    second = client.get("/texter/?sida=2").get_data(as_text=True)
    assert "Text nummer 50" in second and "Text nummer 59" in second
    assert "Text nummer 49" not in second and "Sida 2 av 2" in second
    for odd in ("?sida=99", "?sida=-3", "?sida=abc", "?sida=0", "?sida=99999999999999999999"):
        response = client.get(f"/texter/{odd}")
        assert response.status_code == 200, odd
        assert "Sida 2 av 2" in response.get_data(as_text=True) or odd != "?sida=99"


def test_editing_an_old_text_moves_it_to_the_top(client, anna):
    old = add_text(anna, title="Gammal", at=now() - timedelta(days=10))
    add_text(anna, title="Ny", at=now() - timedelta(days=1))
    post_form(client, f"/texter/{old.id}/andra", {**FORM, "title": "Gammal men ändrad"})
    html = client.get("/texter/").get_data(as_text=True)
    assert html.index("Gammal men ändrad") < html.index(">Ny<")
