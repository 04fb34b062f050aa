"""A granted restriction stops marketing, statistics and coach reading until the DPO lifts it."""
from datetime import timedelta

import sqlalchemy as sa

from portal.auth.models import AccountStatus, User
from portal.clock import now
from portal.coach.models import CoachLink, LinkStatus
from portal.consent.models import ConsentSource, DailyPageView, Purpose
from portal.consent.marketing_services import audience
from portal.consent.services import record_consent
from portal.db import db
from portal.requests.deadlines import due_date
from portal.requests.models import RequestKind, RequestStatus, RightsRequest
from portal.texts.models import Text, TextKind
from tests.conftest import login, login_dpo, make_user, post_form


def restricted_setup():
    user = make_user()
    coach = make_user(email="coach@example.se", name="Cecilia Coach", role="coach")
    make_user(email="dso@cowrite.se", name="Dag Dso", role="dpo")
    record_consent(user.id, Purpose.NEWSLETTER, True, ConsentSource.SETTINGS)
    text = Text(user_id=user.id, title="Delat brev", kind=TextKind.CV, body="x",
                shared_with_coach=True)
    db.session.add_all([text, CoachLink(user_id=user.id, coach_id=coach.id,
                                        coach_email=coach.email, status=LinkStatus.ACTIVE,
                                        invite_expires_at=now() + timedelta(days=14))])
    received = now()
    req = RightsRequest(reference="DSR-2026-000777", user_id=user.id,
                        kind=RequestKind.RESTRICTION, due_on=due_date(received),
                        received_at=received, details="Kontrollera mina uppgifter")
    db.session.add(req)
    db.session.commit()
    return user, text, req


def test_restriction_pauses_marketing_statistics_and_coach_until_lifted(app):
    user, text, req = restricted_setup()
    coach_client, dpo_client, user_client = app.test_client(), app.test_client(), app.test_client()
    login(coach_client, email="coach@example.se")
    text_url = f"/coach/anvandare/{user.id}/texter/{text.id}"
    assert coach_client.get(text_url).status_code == 200

    login_dpo(dpo_client)
    response = post_form(dpo_client, f"/dso/begaranden/{req.id}/bevilja", {},
                         form_path=f"/dso/begaranden/{req.id}")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).status == AccountStatus.RESTRICTED
    assert db.session.get(RightsRequest, req.id).status == RequestStatus.APPROVED

    assert user.id not in set(db.session.scalars(audience(Purpose.NEWSLETTER)))
    assert coach_client.get(text_url).status_code == 404  # sharing paused
    login(user_client)
    user_client.set_cookie("cookie_consent", "v1.f1.s1.m0")
    user_client.get("/mina-uppgifter")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DailyPageView)) == 0

    review = dpo_client.get(f"/dso/begaranden/{req.id}").get_data(as_text=True)
    assert "Häv begränsningen" in review
    lifted = post_form(dpo_client, f"/dso/begaranden/{req.id}/hav-begransning", {},
                       form_path=f"/dso/begaranden/{req.id}")
    assert lifted.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).status == AccountStatus.ACTIVE
    assert user.id in set(db.session.scalars(audience(Purpose.NEWSLETTER)))
    assert coach_client.get(text_url).status_code == 200
    again = post_form(dpo_client, f"/dso/begaranden/{req.id}/hav-begransning", {},
                      form_path=f"/dso/begaranden/{req.id}")
    assert again.status_code == 302  # refused with a message, nothing changes
    db.session.expire_all()
    assert db.session.get(User, user.id).status == AccountStatus.ACTIVE


def test_lifting_is_dpo_only(app):
    user, _, req = restricted_setup()
    client = app.test_client()
    login(client)
    response = client.post(f"/dso/begaranden/{req.id}/hav-begransning")
    assert response.status_code in (400, 404)
