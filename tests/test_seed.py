"""The bulk seeder (`seed-demo --users N --credentials F`): counts and shapes, the known
accounts log in, the audit chain holds, a second run or a failure leaves nothing half-done,
and plain `seed-demo` is unchanged."""
from __future__ import annotations

import json
import stat
from collections import Counter, defaultdict
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from portal.auth.models import LinkToken, Role, TokenPurpose, User
from portal.billing.models import UsageEvent
from portal.clock import now
from portal.coach.models import CoachLink, CoachRead, LinkStatus
from portal.consent.models import ConsentEvent
from portal.db import db
from portal.requests.models import RequestStatus, RequestUpload, RightsRequest
from portal.texts.models import Text
from tests.conftest import post_form

USERS = 300
CREDENTIAL_KEYS = {"password", "heavy_user_email", "heavy_user_id", "heavy_user_text_count",
                   "heavy_user_text_id", "heavy_user_shared_text_id", "heavy_user_request_id",
                   "coach_email", "coach_id", "coach_user_count", "dpo_email", "dpo_id",
                   "dpo_totp_secret", "open_request_id", "sample_user_emails", "users",
                   "coaches", "open_requests", "seed", "domain", "seeded_at"}


def run_seed(app, path, users: int = USERS, seed: int = 7):
    return app.test_cli_runner().invoke(args=["seed-demo", "--users", str(users),
                                              "--credentials", str(path), "--seed", str(seed)])


@pytest.fixture
def seeded(app, tmp_path):
    """A seeded database (inside the test's rolled-back transaction) and its credentials."""
    path = tmp_path / "creds.json"
    result = run_seed(app, path)
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return json.loads(path.read_text()), path


def seeded_users():
    from portal.seed import SEED_DOMAIN

    return list(db.session.scalars(sa.select(User).where(
        User.role == Role.USER, User.email.like(f"%@{SEED_DOMAIN}"))))


# --- counts and shapes --------------------------------------------------------------------------

def test_credentials_file_is_private_and_complete(seeded):
    creds, path = seeded
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(creds) == CREDENTIAL_KEYS
    assert creds["users"] == USERS and creds["open_requests"] == USERS // 10
    assert creds["heavy_user_text_count"] == 200 and creds["coach_user_count"] == 100
    assert len(creds["sample_user_emails"]) == 20
    assert not list(path.parent.glob(".*.tmp"))


def test_users_texts_and_usage_have_the_planned_shapes(ctx, seeded):
    creds, _ = seeded
    users = seeded_users()
    assert len(users) == USERS
    assert len({u.email for u in users}) == USERS
    assert all(u.is_verified and u.policy_accepted_at and u.access_source for u in users)
    assert Counter(u.locale for u in users).most_common(1)[0][0] == "sv"
    assert len({u.access_source for u in users}) >= 5
    seeded_hashes = set(db.session.scalars(sa.select(User.password_hash).where(
        User.email.like("%@seed.example.com"))))
    assert len(seeded_hashes) == 1  # hashed once, reused for every account
    per_user = dict(db.session.execute(sa.select(Text.user_id, sa.func.count())
                                       .group_by(Text.user_id)).all())
    heavy = creds["heavy_user_id"]
    assert per_user.pop(heavy) == 200
    assert len(per_user) == USERS - 1 and set(per_user.values()) <= set(range(5, 16))
    assert 9 <= sum(per_user.values()) / len(per_user) <= 11
    lengths = list(db.session.scalars(sa.select(sa.func.length(Text.body))))
    assert all(1400 <= n <= 2600 for n in lengths)
    usage = dict(db.session.execute(sa.select(UsageEvent.user_id, sa.func.count())
                                    .group_by(UsageEvent.user_id)).all())
    assert usage == {**per_user, heavy: 200}  # one billable use per text
    roles = Counter(db.session.scalars(sa.select(User.role).where(
        User.email.like("%@seed.example.com"))))
    assert roles == {Role.USER: USERS, Role.COACH: 3, Role.DPO: 1}


def test_inactivity_is_spread_as_the_sweep_expects(ctx, seeded):
    from portal.retention.services import deletion_due, warning_due, warning_mail_pending

    def count(conditions) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(User)
                                 .where(*conditions))

    stamp = now()
    assert count(warning_due(stamp)) == 2      # users 137 and 237
    assert count(warning_mail_pending(stamp)) == 0
    assert count(deletion_due(stamp)) == 0
    assert count(deletion_due(stamp + timedelta(days=14))) == 2  # the two warned, later
    warned = list(db.session.scalars(sa.select(User).where(
        User.inactivity_warned_at.is_not(None))))
    assert len(warned) == 2
    for user in warned:
        token = db.session.scalars(sa.select(LinkToken).where(
            LinkToken.user_id == user.id)).one()
        assert token.purpose == TokenPurpose.KEEP_ACCOUNT
        assert token.created_at == user.inactivity_warned_at and token.used_at is None
    oldest = db.session.scalar(sa.select(sa.func.min(User.last_active_at)))
    assert now() - oldest < timedelta(days=200)


def test_every_consent_event_is_a_change(ctx, seeded):
    last: dict = {}
    for user_id, purpose, granted in db.session.execute(
            sa.select(ConsentEvent.user_id, ConsentEvent.purpose, ConsentEvent.granted)
            .order_by(ConsentEvent.id)):
        assert last.get((user_id, purpose)) is not granted
        last[(user_id, purpose)] = granted
    registered = Counter(purpose for (user_id, purpose) in last)
    assert registered["newsletter"] >= USERS and registered["offers"] >= USERS


def test_coach_links_and_reads(ctx, seeded):
    from portal.coach.services import users_for_coach

    creds, _ = seeded
    rows = users_for_coach(creds["coach_id"])
    assert len(rows) == 100 and creds["heavy_user_id"] in {user.id for _, user in rows}
    links = list(db.session.scalars(sa.select(CoachLink)))
    statuses = Counter(link.status for link in links)
    assert statuses[LinkStatus.ACTIVE] > statuses[LinkStatus.REVOKED] > 0
    assert statuses[LinkStatus.EXPIRED] + statuses[LinkStatus.CANCELLED] > 0
    for link in links:
        assert (link.coach_id is not None) == (link.status in (LinkStatus.ACTIVE,
                                                               LinkStatus.REVOKED))
        assert (link.ended_at is None) == (link.status in (LinkStatus.ACTIVE,
                                                           LinkStatus.INVITED))
        if link.status == LinkStatus.INVITED:
            assert link.invite_expires_at > now()
    texts = {t.id: t for t in db.session.scalars(sa.select(Text).where(
        Text.shared_with_coach.is_(True)))}
    reads = list(db.session.scalars(sa.select(CoachRead)))
    link_users = {link.id: link.user_id for link in links}
    assert len(reads) > 200
    for read in reads:  # only shared texts of the link's own user, never before they existed
        text = texts[read.text_id]
        assert text.user_id == read.user_id == link_users[read.link_id]
        assert read.at >= text.created_at
    heavy_reads = sum(read.user_id == creds["heavy_user_id"] for read in reads)
    assert heavy_reads == 180


def test_open_requests_with_id_copies_and_signed_receipts(ctx, seeded):
    from portal.requests.dpo_services import list_queue, receipt_verifies
    from portal.requests.services import read_pages

    requests = list(db.session.scalars(sa.select(RightsRequest)))
    open_ = [r for r in requests if r.status in (RequestStatus.RECEIVED,
                                                 RequestStatus.NEEDS_COMPLETION)]
    assert len(open_) == USERS // 10 and list_queue(None, None, 1).total == USERS // 10
    assert len({r.user_id for r in open_}) == len(open_)
    assert {r.kind.value for r in open_} >= {"erasure", "rectification"}
    today = now().date()
    assert any(r.due_on < today for r in open_) and any(r.due_on > today for r in open_)
    uploads = defaultdict(list)
    for upload in db.session.scalars(sa.select(RequestUpload)):
        uploads[upload.request_id].append(upload)
    for req in requests:
        assert receipt_verifies(req) is True
        assert req.receipt_payload["upload_sha256"] == uploads[req.id][0].sha256
        (upload,) = uploads[req.id]
        if req in open_:
            pages = read_pages(upload)  # decrypts the blob bound to its own reference
            assert len(pages) == upload.pages == 1 and pages[0].startswith(b"\xff\xd8\xff")
        else:
            assert upload.blob_id is None and upload.destroyed_at is not None


def test_audit_chain_verifies_with_one_seed_event(app, seeded):
    from portal.audit import AuditEvent

    result = app.test_cli_runner().invoke(args=["verify-audit"])
    assert result.exit_code == 0 and "obruten" in result.output
    actions = list(db.session.scalars(sa.select(AuditEvent.action)))
    assert actions.count("seed.bulk_created") == 1


def test_same_seed_gives_the_same_data(ctx):
    """Generated rows depend on the seed only (not on the clock's microseconds or keys)."""
    import time_machine

    from portal.seed import Plan, Seeder

    class Recorder:
        """The writer's interface, keeping the rows instead of writing them."""

        def __init__(self):
            self.rows, self.next = defaultdict(list), defaultdict(lambda: 1)
            self.connection = db.session.connection()

        def ids(self, table, count=1):
            first = self.next[table]
            self.next[table] += count
            return first

        def write(self, table, rows):
            self.rows[table] += rows

    def generate(seed: int) -> dict:
        recorder = Recorder()
        with time_machine.travel("2026-11-20 12:00:00+00:00", tick=False):
            Seeder(Plan(users=100, seed=seed), recorder, "hash", lambda _: None).run()
        return recorder.rows

    first, again, other = generate(3), generate(3), generate(4)
    assert first["texts"] == again["texts"] and first["rights_requests"] == again[
        "rights_requests"]
    assert [u[1] for u in first["users"]] == [u[1] for u in again["users"]]
    assert first["texts"] != other["texts"]


# --- the known accounts log in ------------------------------------------------------------------

def test_heavy_user_and_coach_log_in_with_the_file(app, seeded):
    creds, _ = seeded
    heavy = app.test_client()
    response = post_form(heavy, "/logga-in", {"email": creds["heavy_user_email"],
                                              "password": creds["password"]})
    assert response.status_code == 302 and "/mina-uppgifter" in response.headers["Location"]
    assert heavy.get("/mina-uppgifter").status_code == 200
    listing = heavy.get("/texter/").get_data(as_text=True)
    assert "Du har 200 texter." in listing and "Sida 1 av 4" in listing  # 50 a page
    assert heavy.get(f"/texter/{creds['heavy_user_text_id']}").status_code == 200

    coach = app.test_client()
    response = post_form(coach, "/logga-in", {"email": creds["coach_email"],
                                              "password": creds["password"]})
    assert response.status_code == 302
    assert coach.get("/coach/").status_code == 200
    path = f"/coach/anvandare/{creds['heavy_user_id']}/texter/{creds['heavy_user_shared_text_id']}"
    assert coach.get(path).status_code == 200


def test_dpo_logs_in_with_a_code_from_the_files_secret(app, seeded):
    creds, _ = seeded
    dpo = app.test_client()
    first = post_form(dpo, "/logga-in", {"email": creds["dpo_email"],
                                         "password": creds["password"]})
    assert first.status_code == 302 and "/logga-in/kod" in first.headers["Location"]
    code = pyotp.TOTP(creds["dpo_totp_secret"]).now()
    second = post_form(dpo, "/logga-in/kod", {"code": code})
    assert second.status_code == 302 and "/dso/begaranden" in second.headers["Location"]
    queue = dpo.get("/dso/begaranden")
    assert queue.status_code == 200
    review = dpo.get(f"/dso/begaranden/{creds['open_request_id']}").get_data(as_text=True)
    assert "verifierad" in review
    image = dpo.get(f"/dso/begaranden/{creds['open_request_id']}/id/1")
    assert image.status_code == 200 and image.data.startswith(b"\xff\xd8\xff")


# --- refusals and failures ----------------------------------------------------------------------

def table_counts() -> dict:
    from portal.seed import WRITE_ORDER

    return {name: db.session.scalar(sa.text(f"SELECT count(*) FROM {name}"))
            for name in WRITE_ORDER}


def test_second_run_refuses_and_changes_nothing(app, seeded, tmp_path):
    before = table_counts()
    again = run_seed(app, tmp_path / "again.json", seed=8)
    assert again.exit_code != 0 and "redan seedade data" in again.output
    assert table_counts() == before
    assert not (tmp_path / "again.json").exists()


def test_a_failure_midway_leaves_no_half_seed(app, tmp_path, monkeypatch):
    from portal import seed

    before = table_counts()
    original = seed.Seeder._user

    def failing(self, rows, i, user_id):
        if i == 250:
            raise RuntimeError("disk full")
        return original(self, rows, i, user_id)

    monkeypatch.setattr(seed, "CHUNK_USERS", 100)  # two chunks are written before it fails
    monkeypatch.setattr(seed.Seeder, "_user", failing)
    result = run_seed(app, tmp_path / "creds.json")
    assert isinstance(result.exception, RuntimeError)
    db.session.expire_all()
    assert table_counts() == before
    assert list(tmp_path.iterdir()) == []


def test_bulk_options_go_together_and_need_100_users(app, tmp_path):
    runner = app.test_cli_runner()
    alone = runner.invoke(args=["seed-demo", "--users", "300"])
    assert alone.exit_code != 0 and "tillsammans" in alone.output
    few = runner.invoke(args=["seed-demo", "--users", "10", "--credentials",
                              str(tmp_path / "c.json")])
    assert few.exit_code != 0


def test_plain_seed_demo_is_unchanged(app):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0 and result.output.count("demo.cowrite.se") == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 3
