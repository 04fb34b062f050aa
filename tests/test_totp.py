"""The DPO's two-step login: enrolment on first login, a code on every login."""
from __future__ import annotations

import re

import pyotp
import sqlalchemy as sa

from portal.auth.models import User
from portal.clock import now
from portal.db import db
from portal.requests import totp
from tests.conftest import (TEST_TOTP_SECRET, csrf_from, enrol_totp, login, login_dpo,
                            make_user, post_form, totp_code)

DPO = "dso@cowrite.se"
CODE_PAGE = "/logga-in/kod"


def dpo_user() -> User:
    return db.session.scalar(sa.select(User).where(User.email == DPO))


def current_step() -> int:
    return int(now().timestamp()) // 30


def test_password_alone_does_not_log_a_dpo_in(client):
    make_user(DPO, role="dpo")
    response = login(client, DPO)
    assert response.status_code == 302 and response.headers["Location"].endswith(CODE_PAGE)
    for path in ("/dso/begaranden", "/dso/fakturaunderlag", "/dso/raderingar", "/konto/"):
        answer = client.get(path)
        assert answer.status_code == 302 and "/logga-in" in answer.headers["Location"], path


def test_first_login_enrols_with_a_qr_code_and_a_confirming_code(client, app):
    make_user(DPO, role="dpo")
    login(client, DPO)
    page = client.get(CODE_PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>Konfigurera tvåstegsinloggning</h1>" in html
    assert 'src="data:image/svg+xml;base64,' in html
    secret = re.search(r"<code>([A-Z2-7]{32})</code>", html).group(1)
    response = post_form(client, CODE_PAGE, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/dso/begaranden")
    with app.app_context():
        user = dpo_user()
        assert user.totp_enrolled_at is not None and totp.stored_secret(user) == secret
        assert secret.encode() not in user.totp_secret  # stored encrypted
    assert client.get("/dso/begaranden").status_code == 200


def test_the_enrolment_secret_stays_the_same_until_confirmed(client):
    make_user(DPO, role="dpo")
    login(client, DPO)
    first = re.search(r"<code>(\w+)</code>", client.get(CODE_PAGE).get_data(as_text=True))
    response = post_form(client, CODE_PAGE, {"code": "000000"})
    assert response.status_code == 400
    assert "Koden är fel eller har redan använts" in response.get_data(as_text=True)
    again = re.search(r"<code>(\w+)</code>", client.get(CODE_PAGE).get_data(as_text=True))
    assert first.group(1) == again.group(1)
    assert dpo_user().totp_secret is None


def test_every_later_login_asks_for_a_code(client):
    make_user(DPO, role="dpo")
    enrol_totp(DPO)
    login(client, DPO)
    html = client.get(CODE_PAGE).get_data(as_text=True)
    assert "<h1>Ange din kod</h1>" in html and "data:image" not in html
    response = post_form(client, CODE_PAGE, {"code": totp_code(TEST_TOTP_SECRET)})
    assert response.status_code == 302
    assert client.get("/dso/begaranden").status_code == 200


def test_a_wrong_or_malformed_code_is_refused_in_swedish(client):
    make_user(DPO, role="dpo")
    enrol_totp(DPO)
    login(client, DPO)
    for code in ("123456", "12345", "abcdef", "", "1" * 500):
        response = post_form(client, CODE_PAGE, {"code": code})
        assert response.status_code == 400, code
        assert 'class="error-summary"' in response.get_data(as_text=True)
    assert client.get("/dso/begaranden").status_code == 302


def test_codes_one_step_either_side_are_accepted_but_not_two(client, app):
    make_user(DPO, role="dpo")
    enrol_totp(DPO)
    with app.app_context():
        step = current_step()
        assert totp.matching_step(TEST_TOTP_SECRET, totp_code(TEST_TOTP_SECRET, step - 1)) \
            == step - 1
        assert totp.matching_step(TEST_TOTP_SECRET, totp_code(TEST_TOTP_SECRET, step + 1)) \
            == step + 1
        assert totp.matching_step(TEST_TOTP_SECRET, totp_code(TEST_TOTP_SECRET, step - 2)) \
            is None


def test_a_code_cannot_be_used_twice(app):
    make_user(DPO, role="dpo")
    enrol_totp(DPO)
    code = totp_code(TEST_TOTP_SECRET)
    first = app.test_client()
    login(first, DPO)
    assert post_form(first, CODE_PAGE, {"code": code}).status_code == 302
    second = app.test_client()
    login(second, DPO)
    response = post_form(second, CODE_PAGE, {"code": code})
    assert response.status_code == 400
    assert "Koden är fel eller har redan använts" in response.get_data(as_text=True)
    assert second.get("/dso/begaranden").status_code == 302


def test_the_code_step_is_rate_limited(client, app):
    make_user(DPO, role="dpo")
    enrol_totp(DPO)
    login(client, DPO)
    limit = int(app.config["LOGIN_LIMIT_PER_ACCOUNT"].split()[0])
    token = csrf_from(client, CODE_PAGE)
    for _ in range(limit):
        assert client.post(CODE_PAGE, data={"csrf_token": token, "code": "000000"}
                           ).status_code == 400
    response = client.post(CODE_PAGE, data={"csrf_token": token,
                                            "code": totp_code(TEST_TOTP_SECRET)})
    assert response.status_code == 429


def test_the_code_page_without_a_password_step_goes_back_to_login(client):
    response = client.get(CODE_PAGE)
    assert response.status_code == 302 and response.headers["Location"].endswith("/logga-in")


def test_the_pending_step_runs_out_after_five_minutes(client):
    import time_machine
    from datetime import timedelta

    make_user(DPO, role="dpo")
    enrol_totp(DPO)
    login(client, DPO)
    with time_machine.travel(now() + timedelta(minutes=6), tick=False):
        response = client.get(CODE_PAGE)
    assert response.status_code == 302 and response.headers["Location"].endswith("/logga-in")


def test_a_dpo_session_without_the_totp_proof_is_ended(app):
    """Defence in depth: a logged-in DPO session that lacks the second-factor proof."""
    make_user(DPO, role="dpo")
    client = app.test_client()
    login_dpo(client, DPO)
    with client.session_transaction() as session:
        session.pop(totp.PROOF_KEY)
    response = client.get("/dso/begaranden")
    assert response.status_code == 302 and "/logga-in" in response.headers["Location"]
    assert client.get("/konto/").status_code == 302  # logged out


def test_the_next_page_survives_the_code_step(client):
    make_user(DPO, role="dpo")
    enrol_totp(DPO)
    post_form(client, "/logga-in?next=/dso/oversikt", {"email": DPO,
                                                        "password": "ett-bra-losenord-42"},
              form_path="/logga-in")
    response = post_form(client, CODE_PAGE, {"code": totp_code(TEST_TOTP_SECRET)})
    assert response.headers["Location"].endswith("/dso/oversikt")


def test_users_and_coaches_log_in_without_a_code(client):
    make_user("anna@example.se")
    response = login(client)
    assert response.status_code == 302 and CODE_PAGE not in response.headers["Location"]
