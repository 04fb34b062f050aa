"""Registration, e-mail verification through the real SMTP server, and the 7-day purge."""
from datetime import timedelta

import sqlalchemy as sa
import time_machine

from portal.auth.models import LinkToken, User
from portal.clock import now
from portal.db import db
from portal.retention.tasks import purge_unverified
from tests.conftest import links_in, login, make_user, post_form, run_jobs

FORM = {
    "name": "Bertil Berg",
    "email": "Bertil.Berg@Exempel.se",
    "password": "gurka-sommar-cykel-7",
    "password_confirm": "gurka-sommar-cykel-7",
    "access_source": "kundval_rusta_och_matcha",
    "accept_policy": "y",
}


def register(client, **changes):
    return post_form(client, "/registrera", {**FORM, **changes})


def users():
    return db.session.scalars(sa.select(User)).all()


def test_registration_sends_verification_link_that_verifies_once(client, outbox):
    response = register(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/registrera/kolla-e-posten")
    (user,) = users()
    assert user.email == "bertil.berg@exempel.se"
    assert user.email_verified_at is None and user.policy_version
    assert user.password_hash.startswith("$argon2id$")

    assert run_jobs() == 1
    (message,) = outbox
    assert message["To"].addresses[0].addr_spec == "bertil.berg@exempel.se"
    assert "Bekräfta" in message["Subject"]
    (link,) = [u for u in links_in(message) if "/l/" in u]
    path = link.removeprefix("http://portal.test")

    # Unverified: the right password says "confirm first", and no session starts.
    assert "Bekräfta din e-postadress" in login(client, "bertil.berg@exempel.se",
                                                FORM["password"]).get_data(as_text=True)
    assert client.get("/konto/").status_code == 302

    followed = client.get(path)
    assert followed.status_code == 302 and followed.headers["Location"].endswith("/logga-in")
    db.session.expire_all()
    assert users()[0].email_verified_at is not None

    again = client.get(path)
    assert again.status_code == 410
    assert "redan använts" in again.get_data(as_text=True)
    assert login(client, "bertil.berg@exempel.se", FORM["password"]).status_code == 302


def test_expired_verification_link_is_refused_and_changes_nothing(client, outbox):
    register(client)
    run_jobs()
    path = links_in(outbox[0])[0].removeprefix("http://portal.test")
    with time_machine.travel(now() + timedelta(days=8)):
        response = client.get(path)
    assert response.status_code == 410
    assert "har gått ut" in response.get_data(as_text=True)
    db.session.expire_all()
    assert users()[0].email_verified_at is None


def test_unknown_link_is_404_with_swedish_text(client):
    response = client.get("/l/" + "x" * 43)
    assert response.status_code == 404
    assert "inte giltig" in response.get_data(as_text=True)


def test_existing_address_gets_same_answer_and_a_notice(client, outbox):
    make_user(email="bertil.berg@exempel.se")
    response = register(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/registrera/kolla-e-posten")
    assert len(users()) == 1
    run_jobs()
    (message,) = outbox
    assert "försökte skapa" in message["Subject"]


def test_policy_must_be_acknowledged(client):
    response = register(client, accept_policy="")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Det finns ett problem" in text
    assert "integritetspolicyn" in text
    assert users() == []


def test_purge_deletes_unverified_after_seven_days_only(client, ctx):
    register(client)
    make_user(email="kvar@exempel.se")
    with time_machine.travel(now() + timedelta(days=6, hours=23)):
        assert purge_unverified() == 0
    with time_machine.travel(now() + timedelta(days=7, minutes=1)):
        assert purge_unverified() == 1
    assert [u.email for u in users()] == ["kvar@exempel.se"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LinkToken)) == 0
