"""Indexes for the hot queries: PostgreSQL's plans for the SQL the services really emit.

The tables get 12 000 accounts with a handful of rows each in every table (INSERT ... SELECT
generate_series, in the test's own rolled-back transaction), in the shape production has: about
19 users per coach, most requests decided, most accounts recently active, usage appended in
time order. After ANALYZE the planner prefers an index wherever one fits, so a sequential scan
over a big table (or a walk through a whole index) in a plan means a lookup without a fitting
index. Each service is run once with its statements captured (tests/querycount.py), then each
captured statement is EXPLAINed with the very parameters it was sent with; no planner setting
is forced. The foreign-key actions of deletions are planned as their triggers run them.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL
from tests.querycount import count_statements

pytestmark = pytest.mark.skipif(
    not PG_URL.startswith("postgres"),
    reason="query plans are PostgreSQL's: run with TEST_DATABASE_URL set to a PostgreSQL URL")

# Every table that grows with the number of users; organisations stay small.
BIG_TABLES = {"users", "texts", "rights_requests", "request_uploads", "request_events",
              "consent_events", "login_events", "coach_links", "coach_reads", "usage_events",
              "auth_sessions", "link_tokens", "exports", "mail_messages", "audit_events",
              "stored_blobs", "erasure_cases"}

USERS, COACH_EVERY = 12000, 20  # about 19 users per coach
UTC_NOW = "timezone('UTC', now())"
SEED = [
    # organisations (few); accounts active within the last 150 days, except one in a hundred
    # left six months ago and warned since (the inactivity sweep's work)
    """INSERT INTO organisations (name, kind, created_at)
       SELECT 'Org ' || g, 'matchningsforetag', {now} FROM generate_series(1, 20) g""",
    """INSERT INTO users (email, name, role, status, email_verified_at, created_at,
                          last_active_at, inactivity_warned_at)
       SELECT 'seed' || g || '@example.invalid', 'Seed ' || g,
              CASE WHEN g % {coach_every} = 0 THEN 'coach' ELSE 'user' END, 'active', {now},
              {now} - interval '400 days',
              {now} - CASE WHEN g % 100 = 7 THEN 190 ELSE g % 150 END * interval '1 day',
              CASE WHEN g % 100 = 7 THEN {now} - interval '20 days' END
       FROM generate_series(1, {users}) g""",
    # every user linked to one of the coaches
    """WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users
                  WHERE role = 'coach' AND email LIKE 'seed%'),
            u AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users
                  WHERE role = 'user' AND email LIKE 'seed%')
       INSERT INTO coach_links (user_id, coach_id, coach_email, coach_name, status, invited_at,
                                invite_expires_at, accepted_at)
       SELECT u.id, c.id, 'coach' || c.id || '@example.invalid', 'Coach', 'active',
              {now} - interval '30 days', {now} - interval '16 days', {now} - interval '29 days'
       FROM u JOIN c ON c.n = u.n % (SELECT count(*) FROM c)""",
    """INSERT INTO texts (user_id, title, kind, body, shared_with_coach, created_at, updated_at)
       SELECT u.id, 'Text ' || g, 'cv', 'Brödtext', g % 2 = 0,
              {now} - g * interval '1 day', {now} - g * interval '1 hour'
       FROM users u, generate_series(1, 4) g WHERE u.email LIKE 'seed%' AND u.role = 'user'""",
    """INSERT INTO coach_reads (link_id, user_id, text_id, text_title, at)
       SELECT l.id, l.user_id, t.id, t.title, t.updated_at
       FROM coach_links l JOIN texts t ON t.user_id = l.user_id AND t.shared_with_coach""",
    """INSERT INTO consent_events (user_id, purpose, granted, source, at)
       SELECT u.id, (ARRAY['newsletter', 'offers', 'cookies_statistics'])[g], g % 2 = 0,
              'settings', {now}
       FROM users u, generate_series(1, 3) g WHERE u.email LIKE 'seed%'""",
    """INSERT INTO login_events (user_id, at, succeeded, ip_prefix, browser)
       SELECT u.id, {now} - g * interval '1 day', true, '198.51.100.0/24', 'Firefox'
       FROM users u, generate_series(1, 3) g WHERE u.email LIKE 'seed%'""",
    # usage over three years (invoicing keeps them), a few organisations paying; appended
    # in time order, as the table is filled in production
    """INSERT INTO usage_events (user_id, organisation_id, kind, at)
       SELECT u.id, CASE WHEN g % 3 = 0 THEN NULL
                         ELSE (SELECT min(id) FROM organisations) + u.id % 20 END,
              'text_created', {now} - ((u.id * 7 + g * 131) % 1095) * interval '1 day'
       FROM users u, generate_series(1, 4) g WHERE u.email LIKE 'seed%' AND u.role = 'user'
       ORDER BY 4""",
    """INSERT INTO auth_sessions (user_id, token_hash, created_at, last_seen_at)
       SELECT u.id, md5('s' || u.id) || md5('t' || u.id), {now}, {now}
       FROM users u WHERE u.email LIKE 'seed%'""",
    """INSERT INTO link_tokens (user_id, purpose, token_hash, created_at, expires_at, used_at)
       SELECT u.id, CASE WHEN u.inactivity_warned_at IS NULL THEN 'verify_email'
                         ELSE 'keep_account' END,
              md5('l' || u.id) || md5('k' || u.id), coalesce(u.inactivity_warned_at, u.created_at),
              {now} + interval '1 day', NULL
       FROM users u WHERE u.email LIKE 'seed%'""",
    """INSERT INTO stored_blobs (ref, user_id, kind, data, created_at)
       SELECT md5('b' || u.id || '-' || g), u.id, CASE WHEN g = 1 THEN 'export' ELSE 'id_copy' END,
              '\\x00'::bytea, {now}
       FROM users u, generate_series(1, 2) g WHERE u.email LIKE 'seed%' AND u.role = 'user'""",
    """INSERT INTO exports (user_id, status, progress, step, requested_at, finished_at,
                           expires_at, blob_id)
       SELECT b.user_id, 'ready', 100, 'done', {now} - interval '2 days',
              {now} - interval '2 days', {now} + interval '5 days', b.id
       FROM stored_blobs b WHERE b.kind = 'export'""",
    """INSERT INTO exports (user_id, status, progress, step, requested_at)
       SELECT u.id, 'expired', 100, 'done', {now} - interval '30 days'
       FROM users u WHERE u.email LIKE 'seed%' AND u.role = 'user'""",
    """INSERT INTO mail_messages (user_id, template, to_addr, to_name, subject, body_text,
                                 body_html, headers, status, attempts, created_at, sent_at)
       SELECT u.id, 'verify_email', u.email, u.name, 'Hej', '', '', '{{}}', 'sent', 1,
              {now} - g * interval '1 day', {now} - g * interval '1 day'
       FROM users u, generate_series(1, 2) g WHERE u.email LIKE 'seed%'""",
    """INSERT INTO audit_events (at, actor_id, subject_id, action, details, prev_hash, hash)
       SELECT {now}, u.id, u.id, 'text.created', '{{}}', repeat('0', 64),
              md5('a' || u.id || '-' || g) || md5('h' || u.id || '-' || g)
       FROM users u, generate_series(1, 2) g WHERE u.email LIKE 'seed%'""",
    # one request per user, one in five still open, due dates spread over two months
    """INSERT INTO rights_requests (reference, user_id, kind, status, details, signature_name,
                                   received_at, due_on, extension_months, decided_at,
                                   receipt_blob_id)
       SELECT 'S-' || u.id, u.id,
              (ARRAY['erasure', 'restriction', 'rectification', 'objection'])[1 + u.id % 4],
              CASE WHEN u.id % 10 = 0 THEN 'received' WHEN u.id % 10 = 5 THEN 'needs_completion'
                   ELSE 'approved' END, '', 'Seed',
              {now} - (u.id % 60) * interval '1 day',
              (({now} - (u.id % 60) * interval '1 day') + interval '1 month')::date, 0,
              CASE WHEN u.id % 5 = 0 THEN NULL ELSE {now} END, b.id
       FROM users u JOIN stored_blobs b ON b.user_id = u.id AND b.kind = 'id_copy'
       WHERE u.email LIKE 'seed%'""",
    """INSERT INTO request_uploads (request_id, user_id, purpose, received_kind, received_size,
                                   sha256, pages, blob_id, created_at, destroyed_at)
       SELECT r.id, r.user_id, 'id_copy', 'jpeg', 1234, repeat('a', 64), 1,
              CASE WHEN r.decided_at IS NULL THEN r.receipt_blob_id END, r.received_at,
              r.decided_at
       FROM rights_requests r WHERE r.reference LIKE 'S-%'""",
    """INSERT INTO request_events (request_id, at, actor_id, action)
       SELECT r.id, r.received_at + g * interval '1 hour', r.user_id, 'received'
       FROM rights_requests r, generate_series(1, 2) g WHERE r.reference LIKE 'S-%'""",
    """INSERT INTO mail_messages (user_id, template, to_addr, to_name, subject, body_text,
                                 body_html, headers, status, attempts, created_at, sent_at,
                                 attachment_blob_id, attachment_name)
       SELECT r.user_id, 'request_received', 'x', 'x', 'Kvitto', '', '', '{{}}', 'sent', 1,
              r.received_at, r.received_at, r.receipt_blob_id, 'kvitto.pdf'
       FROM rights_requests r WHERE r.reference LIKE 'S-%'""",
    # erasures over the years: nearly all finished, a few at each open step
    """INSERT INTO erasure_cases (user_id, pseudonym, reason, step, due_at, approved_at)
       SELECT NULL, 'Pseudonym ' || g,
              CASE WHEN g % 2 = 0 THEN 'request' ELSE 'inactivity' END,
              CASE WHEN g % 100 = 1 THEN 'pseudonymised' WHEN g % 100 = 2 THEN 'invoicing_closed'
                   ELSE 'deleted' END,
              {now} + (g % 30) * interval '1 day', {now} - g * interval '3 hours'
       FROM generate_series(1, 3000) g""",
]


def _walk(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _walk(child)


@dataclass
class Explained:
    sql: str
    seq_scans: list[str]     # big tables read sequentially
    whole_indexes: list[str]  # indexes read from end to end (no condition on their first column)
    indexes: list[str]       # indexes the plan uses


def _index_facts(conn, index: str) -> tuple[str, bool]:
    """The index's first column, and whether it is partial (holds only the rows it is for)."""
    return tuple(conn.execute(sa.text(
        "SELECT a.attname, i.indpred IS NOT NULL FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE c.relname = :name"), {"name": index}).one())


def _reads_whole_index(conn, node: dict) -> bool:
    """A scan of a full index without a condition on its first column walks all of it: as
    slow as a sequential scan (PostgreSQL 15 has no skip scan). A partial index read in its
    order is the intended use."""
    column, partial = _index_facts(conn, node["Index Name"])
    if partial:
        return False
    return re.search(rf"(?<![\w.]){re.escape(column)}\b", node.get("Index Cond", "")) is None


def explain(conn, statement: str, parameters=None) -> Explained:
    """The plan PostgreSQL makes for one statement, with the parameters it was sent with."""
    row = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    plan = (row if isinstance(row, list) else json.loads(row))[0]["Plan"]
    if os.environ.get("EXPLAIN_DEBUG"):
        print(json.dumps(plan, indent=1))
    nodes = list(_walk(plan))
    index_nodes = [n for n in nodes if "Index Name" in n]
    return Explained(
        sql=" ".join(statement.split())[:200],
        seq_scans=[n["Relation Name"] for n in nodes
                   if n["Node Type"] == "Seq Scan" and n["Relation Name"] in BIG_TABLES],
        whole_indexes=[n["Index Name"] for n in index_nodes if _reads_whole_index(conn, n)],
        indexes=sorted({n["Index Name"] for n in index_nodes}))


def _seed(conn) -> None:
    for statement in SEED:
        conn.execute(sa.text(statement.format(now=UTC_NOW, users=USERS,
                                              coach_every=COACH_EVERY)))
    for table in sorted(BIG_TABLES | {"organisations"}):
        conn.exec_driver_sql(f"ANALYZE {table}")


@pytest.fixture
def seeded(app):
    """Production-shaped tables (in the test's transaction) and the ids the queries need."""
    from portal.db import db

    with app.app_context():
        conn = db.session.connection()
        _seed(conn)
        ids = conn.execute(sa.text(
            "SELECT u.id, l.coach_id, (SELECT min(t.id) FROM texts t WHERE t.user_id = u.id),"
            " (SELECT min(e.id) FROM exports e WHERE e.user_id = u.id),"
            " (SELECT min(o.id) FROM organisations o)"
            " FROM users u JOIN coach_links l ON l.user_id = u.id"
            " WHERE u.email = 'seed1234@example.invalid'")).one()
        db.session.commit()
    return dict(zip(("user", "coach", "text", "export", "org"), ids, strict=True))


# --- the hot queries, each run through the service that builds it ---------------------------

def dpo_queue(ids):
    from portal.requests.dpo_services import list_queue
    from portal.requests.models import RequestKind, RequestStatus

    list_queue(None, None, 1)
    list_queue(RequestKind.ERASURE, None, 1)
    list_queue(None, RequestStatus.NEEDS_COMPLETION, 3)


def dpo_review(ids):
    from portal.db import db
    from portal.requests import dpo_services
    from portal.requests.models import RightsRequest

    req = db.session.scalar(sa.select(RightsRequest).where(RightsRequest.user_id == ids["user"]))
    dpo_services.uploads_for(req)
    dpo_services.events_for(req)


def texts_list(ids):
    from portal.texts import services

    services.list_texts(ids["user"])
    services.count_texts(ids["user"])


def one_text(ids):
    from portal.texts import services

    services.get_own_text(ids["user"], ids["text"])


def coach_area(ids):
    from portal.coach import services

    rows = services.users_for_coach(ids["coach"])
    services.shared_text_counts([user.id for _, user in rows])
    services.link_for_coach(ids["coach"], ids["user"])
    services.had_link(ids["coach"], ids["user"])
    services.shared_texts(ids["user"])
    services.shared_text(ids["user"], ids["text"])


def my_data(ids):
    from portal.account.services import activity_log, gather_my_data, login_history
    from portal.auth.models import User
    from portal.db import db

    gather_my_data(db.session.get(User, ids["user"]))
    login_history(ids["user"])
    activity_log(ids["user"])


def user_requests(ids):
    from portal.requests import services

    services.list_requests(ids["user"])
    services.has_open_erasure(ids["user"])


def session_lookup(ids):
    from portal.auth.models import AuthSession
    from portal.auth.services import _digest, load_session
    from portal.clock import now
    from portal.db import db

    db.session.add(AuthSession(user_id=ids["user"], token_hash=_digest("explain-me"),
                               created_at=now(), last_seen_at=now()))
    db.session.flush()
    assert load_session("explain-me") is not None


def exports_page(ids):
    from portal.exports import services

    services.list_exports(ids["user"])
    services.allowance(ids["user"])
    services.get_own_export(ids["user"], ids["export"])


def inactivity_sweep(ids):
    from portal.clock import now
    from portal.retention import services

    stamp = now()
    for conditions in (services.warning_due(stamp), services.deletion_due(stamp)):
        list(services.due_id_batches(conditions))
    services.mark_warnings([ids["user"]], stamp)
    services.start_inactivity_erasures([ids["user"]], stamp)
    services.pending_warning_ids()


def erasure_reconciler(ids):
    from portal.retention.services import due_erasure_steps

    due_erasure_steps()


def expiry_sweeps(ids):
    from portal.coach.services import expire_due_invitations
    from portal.exports.services import expire_due_exports

    expire_due_invitations()
    expire_due_exports()


def invoice_bases(ids):
    from portal.billing import services
    from portal.billing.models import Organisation
    from portal.db import db

    month = services.previous_month()
    services.organisation_totals(month)
    services.unattributed_count(month)
    services.invoice_basis(db.session.get(Organisation, ids["org"]), month)


HOT = {f.__name__: f for f in (dpo_queue, dpo_review, texts_list, one_text, coach_area,
                                my_data, user_requests, session_lookup, exports_page,
                                inactivity_sweep, erasure_reconciler, expiry_sweeps,
                                invoice_bases)}
EXPLAINABLE = ("SELECT", "UPDATE", "DELETE", "WITH")


# --- the foreign-key actions of a deletion --------------------------------------------------
# Deleting an account (erasure, day 60), its texts and blobs (day 0) or an expired export's
# blob makes PostgreSQL run one statement per deleted row on every referencing table; these
# are those statements as its referential-integrity triggers write them, planned the way the
# triggers' saved plans are (generic: the deleted row's id is a parameter).

FK_ACTIONS = {
    "text deleted: its reads": 'UPDATE ONLY coach_reads SET text_id = NULL WHERE $1 = text_id',
    "link deleted: its reads": 'DELETE FROM ONLY coach_reads WHERE $1 = link_id',
    "account deleted: its uploads": 'DELETE FROM ONLY request_uploads WHERE $1 = user_id',
    "account deleted: its requests": 'DELETE FROM ONLY rights_requests WHERE $1 = user_id',
    "account deleted: its links": 'DELETE FROM ONLY coach_links WHERE $1 = user_id',
    "account deleted: coach's links":
        'UPDATE ONLY coach_links SET coach_id = NULL WHERE $1 = coach_id',
    "account deleted: its usage": 'UPDATE ONLY usage_events SET user_id = NULL WHERE $1 = user_id',
    "account deleted: its blobs": 'DELETE FROM ONLY stored_blobs WHERE $1 = user_id',
    "account deleted: its consents": 'DELETE FROM ONLY consent_events WHERE $1 = user_id',
    "account deleted: its logins": 'DELETE FROM ONLY login_events WHERE $1 = user_id',
    "account deleted: its mail": 'DELETE FROM ONLY mail_messages WHERE $1 = user_id',
    "account deleted: its exports": 'DELETE FROM ONLY exports WHERE $1 = user_id',
    "account deleted: its case": 'UPDATE ONLY erasure_cases SET user_id = NULL WHERE $1 = user_id',
    "request deleted: its events": 'DELETE FROM ONLY request_events WHERE $1 = request_id',
    "blob deleted: exports": 'UPDATE ONLY exports SET blob_id = NULL WHERE $1 = blob_id',
    "blob deleted: uploads": 'UPDATE ONLY request_uploads SET blob_id = NULL WHERE $1 = blob_id',
    "blob deleted: receipts":
        'UPDATE ONLY rights_requests SET receipt_blob_id = NULL WHERE $1 = receipt_blob_id',
    "blob deleted: mail attachments":
        'UPDATE ONLY mail_messages SET attachment_blob_id = NULL WHERE $1 = attachment_blob_id',
}


def explain_foreign_key_actions(conn) -> dict[str, list[Explained]]:
    """Each foreign-key action's statement, planned generically as its trigger runs it."""
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    plans = {}
    for number, (name, statement) in enumerate(FK_ACTIONS.items()):
        conn.exec_driver_sql(f"PREPARE fk_action_{number}(integer) AS {statement}")
        plans[f"foreign key, {name}"] = [explain(conn, f"EXECUTE fk_action_{number}(1)")]
        conn.exec_driver_sql(f"DEALLOCATE fk_action_{number}")
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = auto")
    return plans


# --- the test ---------------------------------------------------------------------------

def test_hot_queries_and_foreign_key_actions_use_indexes(app, seeded):
    """Every statement of every hot query, and every foreign-key action of a deletion, reads
    big tables through an index (one seeding for all of them: it is the slow part)."""
    from portal.db import db

    plans: dict[str, list[Explained]] = {}
    with app.app_context():
        for name, run in HOT.items():
            with count_statements(db.engine) as log:
                run(seeded)
            conn = db.session.connection()
            plans[name] = [explain(conn, sql, params) for sql, params
                           in zip(log.statements, log.parameters, strict=True)
                           if sql.lstrip().upper().startswith(EXPLAINABLE)
                           and "pg_advisory" not in sql]
            db.session.rollback()  # what the query changed; the seeded rows stay
        plans.update(explain_foreign_key_actions(db.session.connection()))
        db.session.rollback()
    failures = []
    for name, explained in plans.items():
        assert explained, f"{name} issued no statement to explain"
        for plan in explained:
            print(f"\n{name}: {', '.join(plan.indexes) or '(no index)'}\n    {plan.sql}")
            if plan.seq_scans or plan.whole_indexes:
                failures.append((name, plan.sql, plan.seq_scans, plan.whole_indexes))
    assert not failures, "sequential or whole-index scans:\n" + "\n".join(map(str, failures))
