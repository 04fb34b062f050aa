"""No N+1: every page of the user, coach and DPO areas issues a bounded number of SQL
statements that does not grow with the data behind it.

Each page is rendered twice: for a small world (one of everything) and for a large one (40
texts, 40 events of each kind, 20 requests; a coach with 40 users; a DPO queue of well over
one page of open requests of every kind, with ID copies). Both must issue exactly as many
statements, and no more than the page's ceiling, so a future per-row query is caught here.
The worlds are built with the app's models straight in the database (one flush per kind of
row), so the module stays fast.
"""
from __future__ import annotations

import io
import itertools
import zipfile
from dataclasses import dataclass
from datetime import timedelta

import pytest
from PIL import Image

from portal.audit import AuditEvent
from portal.auth.models import (AccountStatus, AuthSession, LinkToken, LoginEvent, Role,
                                TokenPurpose, User)
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.billing.services import previous_month
from portal.clock import now
from portal.coach.models import CoachLink, CoachRead, LinkStatus
from portal.consent.models import (COOKIE_PURPOSES, MARKETING_PURPOSES, ConsentEvent,
                                   ConsentSource)
from portal.db import db
from portal.exports.models import Export, ExportStatus
from portal.mail.models import MailMessage, MailStatus
from portal.requests import deadlines, signing
from portal.requests.models import (RequestEvent, RequestKind, RequestStatus, RequestUpload,
                                    RightsRequest)
from portal.retention.models import ErasureCase, ErasureReason, ErasureStep
from portal.storage import put_blob
from portal.texts.models import Text, TextKind
from tests.conftest import login, login_dpo, make_user

PASSWORD = "ett-bra-losenord-42"
DPO_EMAIL = "dso@cowrite.se"
SMALL, LARGE = 1, 40          # texts and events of each kind per user
SMALL_REQ, LARGE_REQ = 1, 20  # the user's own rights requests
OTHERS = 39                   # the large coach's further users, each with open requests
OTHER_REQUESTS = 2            # ... so the open requests fill more than one queue page


# --- the pages ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    who: str       # "user", "coach" or "dpo": whose client asks
    path: str      # formatted with the world's ids
    ceiling: int   # the most statements the page may issue: what it issues on PostgreSQL
                   # (audit appends take an advisory lock there) plus one, as a regression guard


PAGES = {
    # the user's area
    "account overview": Page("user", "/konto/", 5),
    "my data": Page("user", "/mina-uppgifter", 3),
    "edit profile": Page("user", "/mina-uppgifter/andra", 3),
    "change e-mail": Page("user", "/mina-uppgifter/e-post", 3),
    "login history": Page("user", "/mina-uppgifter/inloggningar", 4),
    "activity log": Page("user", "/mina-uppgifter/logg", 4),
    "rights": Page("user", "/mina-rattigheter", 3),
    "change password": Page("user", "/konto/losenord", 3),
    "texts": Page("user", "/texter/", 4),
    "new text": Page("user", "/texter/ny", 3),
    "one text": Page("user", "/texter/{text}", 4),
    "edit text": Page("user", "/texter/{text}/andra", 4),
    "delete text": Page("user", "/texter/{text}/radera", 4),
    "my coach": Page("user", "/mina-uppgifter/coach", 7),
    "add coach": Page("user", "/mina-uppgifter/coach/ny", 5),
    "marketing": Page("user", "/mina-uppgifter/marknadsforing", 5),
    "cookie settings": Page("user", "/kakor/installningar", 3),
    "cookie policy": Page("user", "/cookies", 3),
    "exports": Page("user", "/mina-uppgifter/export", 6),
    "export status": Page("user", "/mina-uppgifter/export/{export}/status", 4),
    "export download": Page("user", "/mina-uppgifter/export/{export}/ladda-ner", 8),
    "requests": Page("user", "/mina-rattigheter/begaran", 4),
    "one request": Page("user", "/mina-rattigheter/begaran/{request}", 6),
    "request receipt": Page("user", "/mina-rattigheter/begaran/{request}/kvitto.pdf", 5),
    "erasure request form": Page("user", "/mina-rattigheter/begaran/radering", 4),
    "restriction request form": Page("user", "/mina-rattigheter/begaran/begransning", 3),
    "home (logged in)": Page("user", "/", 3),
    # the coach area
    "coach: my users": Page("coach", "/coach/", 5),
    "coach: one user's texts": Page("coach", "/coach/anvandare/{person}", 6),
    "coach: one shared text": Page("coach", "/coach/anvandare/{person}/texter/{shared}", 10),
    "coach: account overview": Page("coach", "/konto/", 5),
    # the DPO area
    "dpo: queue": Page("dpo", "/dso/begaranden", 5),
    "dpo: queue, one kind": Page("dpo", "/dso/begaranden?typ=restriction", 5),
    "dpo: queue, one status": Page("dpo", "/dso/begaranden?status=needs_completion", 5),
    "dpo: queue, page 2": Page("dpo", "/dso/begaranden?sida=2", 5),
    "dpo: request review": Page("dpo", "/dso/begaranden/{request}", 7),
    "dpo: ID copy, last page": Page("dpo", "/dso/begaranden/{request}/id/{last_id_page}", 8),
    "dpo: overview": Page("dpo", "/dso/oversikt", 6),
    "dpo: erasures": Page("dpo", "/dso/raderingar", 6),
    "dpo: invoice bases": Page("dpo", "/dso/fakturaunderlag", 5),
    "dpo: invoice basis CSV": Page("dpo", "/dso/fakturaunderlag/{month}/{org}.csv", 9),
    "dpo: account overview": Page("dpo", "/konto/", 5),
    "dpo: activity log": Page("dpo", "/mina-uppgifter/logg", 4),
}


# --- building a world -----------------------------------------------------------------------

_SEQ = itertools.count(1)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (90, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _id_archive(pages: int) -> bytes:
    """An ID copy as the user side stores it: an uncompressed ZIP of page-N.jpg."""
    page, buffer = _jpeg(), io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number in range(1, pages + 1):
            archive.writestr(f"page-{number}.jpg", page)
    return buffer.getvalue()


def _cycle(values, n: int) -> list:
    """The first n values of `values` repeated."""
    return list(itertools.islice(itertools.cycle(values), n))


def _nth(values, i: int):
    """The i-th value of `values` repeated."""
    values = list(values)
    return values[i % len(values)]


def add_organisations(count: int) -> list[Organisation]:
    orgs = [Organisation(name=f"Matchning {next(_SEQ)} AB", org_number=None,
                         kind=OrganisationKind.MATCHNINGSFORETAG,
                         contact_email="faktura" + "@" + "matchning.example")
            for _ in range(count)]
    db.session.add_all(orgs)
    db.session.flush()
    return orgs


def add_users(count: int, status: AccountStatus = AccountStatus.ACTIVE) -> list[int]:
    """Plain accounts without passwords: the people around the one tested."""
    stamp = now()
    users = [User(email=f"person{next(_SEQ)}" + "@" + "example.invalid", name=f"Person {i}",
                  role=Role.USER, status=status, email_verified_at=stamp, created_at=stamp,
                  last_active_at=stamp) for i in range(count)]
    db.session.add_all(users)
    db.session.flush()
    return [user.id for user in users]


def add_texts(user_ids: list[int], count: int) -> list[Text]:
    """`count` texts for each user, every other one shared with the coach (the first one is)."""
    stamp = now()
    texts = [Text(user_id=user_id, title=f"Text {i}", kind=_nth(list(TextKind), i),
                  body="Brödtext " * 20, shared_with_coach=i % 2 == 0,
                  created_at=stamp - timedelta(minutes=i), updated_at=stamp - timedelta(minutes=i))
             for user_id in user_ids for i in range(count)]
    db.session.add_all(texts)
    db.session.flush()
    return texts


@dataclass(frozen=True)
class RequestSpec:
    user_id: int
    kind: RequestKind
    status: RequestStatus
    uploads: int = 1
    live: int = 1  # the newest uploads still hold their ID copy (while undecided)
    events: int = 1


def add_requests(app, specs: list[RequestSpec], decided_by: int | None) -> list[int]:
    """Filed requests, each with a signed receipt (payload, signature, stored PDF), its ID
    copies (the live ones pointing at encrypted ID blobs: one per upload of a request, shared
    between requests) and its history; decided ones carry the decision. Returns their ids in
    the order of `specs`."""
    key = signing.load_private_key(app.config["SIGNING_KEY"])
    id_blobs = [put_blob(_id_archive(2), "id_copy", None).id
                for _ in range(max((spec.live for spec in specs), default=0))]
    receipt_blob = put_blob(b"%PDF-1.7 kvitto", "request_receipt", None).id
    requests = []
    for spec in specs:
        stamp = now() - timedelta(days=next(_SEQ) % 25)
        req = RightsRequest(reference=f"DSR-2026-{next(_SEQ):06d}", user_id=spec.user_id,
                            kind=spec.kind, status=spec.status, signature_name="Anna Andersson",
                            declaration_at=stamp, received_at=stamp,
                            due_on=deadlines.due_date(stamp), receipt_blob_id=receipt_blob,
                            receipt_payload={"kind": spec.kind.value,
                                             "received_at": stamp.isoformat(),
                                             "upload_sha256": "ab" * 32})
        req.receipt_signature = signing.sign(key, req.receipt_payload)
        if spec.status not in (RequestStatus.RECEIVED, RequestStatus.NEEDS_COMPLETION):
            req.decided_at, req.decided_by = stamp + timedelta(days=3), decided_by
            req.id_verified_by, req.id_verified_at = decided_by, stamp + timedelta(days=3)
        requests.append(req)
    db.session.add_all(requests)
    db.session.flush()
    for req, spec in zip(requests, specs, strict=True):
        for number in range(spec.uploads):
            first_live = spec.uploads - spec.live
            live = number >= first_live and req.decided_at is None
            db.session.add(RequestUpload(
                request_id=req.id, user_id=spec.user_id, purpose="id_copy",
                received_kind="jpeg", received_size=1234, sha256="ab" * 32, pages=2,
                blob_id=id_blobs[number - first_live] if live else None,
                destroyed_at=None if live else req.received_at))
        db.session.add_all([RequestEvent(
            request_id=req.id, actor_id=spec.user_id, at=req.received_at + timedelta(minutes=i),
            action=_nth(("received", "extended", "completed"), i))
            for i in range(spec.events)])
    return [req.id for req in requests]


def add_history(user: User, coach: User, org: Organisation, orgs: list[Organisation], n: int,
                texts: list[Text]) -> None:
    """The user's active link to `coach`, n-1 ended links before it, and n of every event."""
    stamp = now()
    ended = [CoachLink(user_id=user.id, coach_id=None, organisation_id=orgs[i % len(orgs)].id,
                       coach_email=f"tidigare{i}" + "@" + "coach.example", coach_name=f"Coach {i}",
                       status=_nth((LinkStatus.REVOKED, LinkStatus.CANCELLED,
                                    LinkStatus.EXPIRED), i),
                       invited_at=stamp - timedelta(days=100 - i),
                       invite_expires_at=stamp - timedelta(days=86 - i), ended_at=stamp)
             for i in range(n - 1)]
    link = CoachLink(user_id=user.id, coach_id=coach.id, organisation_id=org.id,
                     coach_email=coach.email, coach_name=coach.name, status=LinkStatus.ACTIVE,
                     invited_at=stamp, invite_expires_at=stamp + timedelta(days=14),
                     accepted_at=stamp)
    db.session.add_all([*ended, link])
    db.session.flush()
    uid, month = user.id, previous_month()
    db.session.add_all(
        [CoachRead(link_id=link.id, user_id=uid, text_id=texts[i % len(texts)].id,
                   text_title=texts[i % len(texts)].title, at=stamp - timedelta(minutes=i))
         for i in range(n)]
        + [ConsentEvent(user_id=uid, purpose=p, granted=i % 2 == 0, source=ConsentSource.SETTINGS)
           for i, p in enumerate(_cycle(MARKETING_PURPOSES, n))]
        + [ConsentEvent(user_id=uid, purpose=p, granted=i % 2 == 1,
                        source=ConsentSource.COOKIE_BANNER)
           for i, p in enumerate(_cycle(COOKIE_PURPOSES, n))]
        + [LoginEvent(user_id=uid, succeeded=i % 3 != 0, ip_prefix="198.51.100.0/24",
                      browser="Firefox") for i in range(n)]
        + [UsageEvent(user_id=uid, organisation_id=org.id,
                      at=month.start + timedelta(hours=i + 1)) for i in range(n)]
        + [MailMessage(user_id=uid, template="verify_email", to_addr=user.email,
                       subject=f"Meddelande {i}", status=MailStatus.SENT, sent_at=stamp)
           for i in range(n)]
        + [AuthSession(user_id=uid, token_hash=f"{next(_SEQ):064x}") for _ in range(n - 1)]
        + [LinkToken(user_id=uid, purpose=TokenPurpose.CHANGE_EMAIL,
                     token_hash=f"{next(_SEQ):064x}", expires_at=stamp + timedelta(hours=i + 1),
                     new_email=f"ny{i}" + "@" + "example.invalid") for i in range(n)]
        # The activity log only reads these rows: no need to chain their hashes.
        + [AuditEvent(actor_id=uid, subject_id=uid, details={"n": i}, prev_hash="0" * 64,
                      hash=f"{next(_SEQ):064x}",
                      action=_nth(("text.created", "consent.changed", "coach.text_read"), i))
           for i in range(n)])


def add_exports(user_id: int, n: int) -> int:
    """n exports older than a day (none in progress); the newest is ready to download."""
    stamp, statuses = now(), (ExportStatus.EXPIRED, ExportStatus.FAILED, ExportStatus.VOIDED)
    exports = [Export(user_id=user_id, status=statuses[i % 3], step="done" if i % 3 == 0 else "",
                      requested_at=stamp - timedelta(days=2, minutes=i + 1)) for i in range(n - 1)]
    blob = put_blob(b"PK export", "export", user_id)
    ready = Export(user_id=user_id, status=ExportStatus.READY, progress=100, step="done",
                   requested_at=stamp - timedelta(days=2), finished_at=stamp - timedelta(days=2),
                   expires_at=stamp + timedelta(days=5), blob_id=blob.id, size=9,
                   sha256="cd" * 32)
    db.session.add_all([*exports, ready])
    db.session.flush()
    return ready.id


def add_erasures(n: int, mail_to: int) -> None:
    """n erasure cases at every step, with their confirmation mails."""
    stamp = now()
    user_ids = add_users(n, AccountStatus.PSEUDONYMISED)
    mails = [MailMessage(user_id=mail_to, template="erasure_confirmed", to_addr="",
                         subject="Raderad", status=MailStatus.SENT, sent_at=stamp)
             for _ in user_ids]
    db.session.add_all(mails)
    db.session.flush()
    for i, (uid, mail) in enumerate(zip(user_ids, mails, strict=True)):
        step = _nth(list(ErasureStep), i)
        db.session.add(ErasureCase(
            user_id=None if step == ErasureStep.DELETED else uid, pseudonym=f"Pseudonym {i:08X}",
            reason=_nth(list(ErasureReason), i), step=step,
            due_at=stamp + timedelta(days=i), approved_at=stamp - timedelta(days=i),
            confirmation_mail_id=mail.id))


def build_world(app, n: int, requests: int, others: int, dpo_id: int) -> dict:
    """A user with n of everything and `requests` requests, their coach (with `others`
    further users who share texts and have open requests), n erasure cases and usage for
    the invoice bases. Returns the ids the page paths need, and the e-mail addresses."""
    with app.app_context():
        seq = next(_SEQ)
        orgs = add_organisations(max(1, n // 8))
        org = orgs[0]
        coach = make_user(f"coach{seq}" + "@" + "coach.example", name=f"Carl Coach {seq}",
                          role="coach")
        user = make_user(f"anna{seq}" + "@" + "example.se", name="Anna Andersson")
        user.phone, user.org_number, user.organisation_id = "+46701234567", "5560160680", org.id
        texts = add_texts([user.id], n)
        add_history(user, coach, org, orgs, n, texts)
        export_id = add_exports(user.id, n)
        kinds, statuses = list(RequestKind), list(RequestStatus)
        request_id, *_ = add_requests(app, [
            RequestSpec(user.id, RequestKind.ERASURE, RequestStatus.RECEIVED,
                        uploads=max(1, n // 10), live=min(n, 2), events=n),
            *(RequestSpec(user.id, kinds[i % len(kinds)], statuses[i % len(statuses)])
              for i in range(1, requests))], decided_by=dpo_id)
        stamp, other_ids = now(), add_users(others)
        add_texts(other_ids, 3)
        for i, other in enumerate(other_ids):
            org_id = orgs[i % len(orgs)].id
            db.session.add_all([
                CoachLink(user_id=other, coach_id=coach.id, organisation_id=org_id,
                          coach_email=coach.email, coach_name=coach.name,
                          status=LinkStatus.ACTIVE, invited_at=stamp,
                          invite_expires_at=stamp + timedelta(days=14), accepted_at=stamp),
                UsageEvent(user_id=other, organisation_id=org_id,
                           at=previous_month().start + timedelta(days=1))])
        add_requests(app, [
            RequestSpec(other, kinds[(i + j) % len(kinds)],
                        (RequestStatus.RECEIVED, RequestStatus.NEEDS_COMPLETION)[j % 2])
            for i, other in enumerate(other_ids) for j in range(OTHER_REQUESTS)], decided_by=None)
        add_erasures(n, mail_to=user.id)
        db.session.commit()
        shared = next(t.id for t in texts if t.shared_with_coach)
        return {"user": user.email, "coach": coach.email, "text": texts[0].id,
                "export": export_id, "request": request_id, "person": user.id,
                "last_id_page": 2 * min(n, 2),
                "shared": shared, "month": previous_month().key, "org": org.id}


# --- the test -------------------------------------------------------------------------------

def _client(app, world: dict, who: str, dpo_client):
    if who == "dpo":
        return dpo_client
    client = app.test_client()
    assert login(client, world[who], PASSWORD).status_code == 302
    return client


def _measure(app, query_counter, world: dict, page: Page, dpo_client):
    client = _client(app, world, page.who, dpo_client)
    response, log = query_counter.get(client, page.path.format(**world))
    assert response.status_code == 200, (page.path, response.status_code)
    return log


@pytest.mark.parametrize("name", list(PAGES))
def test_statements_do_not_grow_with_the_data(app, query_counter, record_property, name):
    page = PAGES[name]
    with app.app_context():
        dpo_id = make_user(DPO_EMAIL, name="Dag Dso", role="dpo").id
    dpo_client = app.test_client()
    assert login_dpo(dpo_client, DPO_EMAIL).status_code == 302

    small_world = build_world(app, SMALL, SMALL_REQ, 0, dpo_id)
    small = _measure(app, query_counter, small_world, page, dpo_client)
    large_world = build_world(app, LARGE, LARGE_REQ, OTHERS, dpo_id)
    large = _measure(app, query_counter, large_world, page, dpo_client)

    record_property("statements_small", small.count)
    record_property("statements_large", large.count)
    print(f"\n{name}: {small.count} statements (small), {large.count} (large)")
    assert large.count == small.count, (
        f"{name}: {small.count} statements with one of everything, {large.count} with many"
        f"\n--- small ---\n{small.describe()}\n--- large ---\n{large.describe()}")
    assert large.count <= page.ceiling, (
        f"{name}: {large.count} statements, more than its ceiling {page.ceiling}"
        f"\n{large.describe()}")
