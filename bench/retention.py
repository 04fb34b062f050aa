"""Is the daily inactivity sweep set-based? `python -m bench.retention`

For 1 000 000 and then 100 000 accounts (each size in its own child process, so each has its
own peak RSS), in a fresh PostgreSQL database created for the run and dropped after it:

  data      accounts made with INSERT … SELECT generate_series (no Python loop): 1 % due for
            the 14-day warning, 1 % due for deletion (warned 20 days ago, warning mail
            written), the rest active within the last five months
  bare SQL  one SELECT returning the ids of both groups, with exactly the sweep's conditions
            (median of 3, after a warm-up run)
  bare DML  the same selection doing the batch jobs' writes in plain SQL statements (mark
            the warnings; set the status and insert the erasure cases), in a transaction
            that is rolled back (median of 3)
  sweep     portal.retention.tasks.inactivity_sweep(): reads the due ids in keyset batches
            of 1 000 and enqueues one job per batch (ids only); no writes (after a warm-up
            sweep at a moment when nothing is due, as the bare SQL gets a warm-up run too;
            median of 3, the queue emptied before each)
  jobs      the batch jobs the sweep enqueued, run here one after the other as a worker
            would (without the fork): one UPDATE per warning batch; per deletion batch one
            lookup, one UPDATE … RETURNING, one INSERT of the cases, one audit event (the
            reconciler enqueues each case's first step afterwards)
  RSS       ru_maxrss of the child process after the jobs (and before the sweep)

Not timed: the warning mails (the send_inactivity_warnings job) and the erasure steps
themselves (10 000 full erasures).

Environment: BENCH_PG_URL (an administrative PostgreSQL URL, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_REDIS_URL (default db 13, flushed).
Targets: sweep / bare SQL <= 3, peak RSS <= 150 MB, RSS at 100 000 within 10 % of 1 000 000.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta, timezone
from pathlib import Path

WORKDIR = Path(tempfile.mkdtemp(prefix="bench-retention-"))
os.environ.setdefault("PORTAL_INSTANCE", str(WORKDIR / "instance"))  # before portal imports

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SIZES = (1_000_000, 100_000)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the database ---------------------------------------------------------------------------

def create_database() -> tuple[str, callable]:
    from portal.db import normalise_url

    name = f"bench_retention_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalise_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(normalise_url(ADMIN_URL)).set(database=name)

    def drop() -> None:
        from portal.db import db

        if db.engine is not None:
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return url.render_as_string(hide_password=False), drop


def make_app(url: str):
    from alembic import command

    from portal import create_app
    from portal.cli import alembic_config

    app = create_app({"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "MAIL_BACKEND": "file",
                      "MAIL_OUTBOX": str(WORKDIR / "outbox"), "RATELIMIT_ENABLED": False})
    with app.app_context():
        command.upgrade(alembic_config(), "head")
    return app


def naive(moment):
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def generate(size: int, stamp) -> None:
    """Accounts in one INSERT … SELECT: g % 100 == 0 due for a warning, == 1 due for
    deletion (with the warning's keep token), everything else recently active."""
    from portal.db import db
    from portal.retention.services import INACTIVITY

    params = {
        "n": size,
        "now": naive(stamp),
        "old": naive(stamp - timedelta(days=400)),
        # 6 months - 7 days ago: inside the warning window, not yet due for deletion
        "warn_active": naive(stamp - INACTIVITY + timedelta(days=7)),
        # 6 months + 10 days ago, warned 20 days ago
        "gone_active": naive(stamp - INACTIVITY - timedelta(days=10)),
        "warned": naive(stamp - timedelta(days=20)),
    }
    statements = [
        """
        INSERT INTO users (id, email, email_verified_at, password_hash, name, role, status,
                           locale, access_source, created_at, last_active_at,
                           inactivity_warned_at)
        SELECT g, 'anvandare' || g || '@bench.invalid', :old, 'x', 'Användare ' || g, 'user',
               'active', 'sv', 'stod_och_matchning', :old,
               CASE g % 100
                 WHEN 0 THEN :warn_active - (g % 5000) * interval '1 second'
                 WHEN 1 THEN :gone_active - (g % 5000) * interval '1 second'
                 ELSE :now - (g % 150) * interval '1 day' - (g % 86400) * interval '1 second'
               END,
               CASE WHEN g % 100 = 1 THEN CAST(:warned AS timestamp) END
        FROM generate_series(1, :n) AS g
        """,
        "SELECT setval(pg_get_serial_sequence('users', 'id'), :n)",
        """
        INSERT INTO link_tokens (user_id, purpose, token_hash, created_at, expires_at)
        SELECT id, 'keep_account', encode(sha256(convert_to('keep' || id, 'UTF8')), 'hex'),
               :warned, :now
        FROM users WHERE id % 100 = 1
        """,
    ]
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement), params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


# --- the measurements -----------------------------------------------------------------------

def compiled(statement) -> str:
    from sqlalchemy.dialects import postgresql

    return str(statement.compile(dialect=postgresql.dialect(),
                                 compile_kwargs={"literal_binds": True}))


def bare_statements(stamp) -> tuple[str, list[str]]:
    """The sweep's own conditions (from portal.retention.services), as bare SQL."""
    from portal.auth.models import AccountStatus, User
    from portal.retention.models import ErasureCase
    from portal.retention.services import deletion_due, warning_due

    select = sa.union_all(sa.select(User.id).where(*warning_due(stamp)),
                          sa.select(User.id).where(*deletion_due(stamp)))
    warn = sa.update(User).where(*warning_due(stamp)).values(inactivity_warned_at=stamp)
    due = sa.select(User.id).where(*deletion_due(stamp)).subquery()
    cases = sa.insert(ErasureCase).from_select(
        ["user_id", "pseudonym", "reason", "step", "due_at", "approved_at"],
        sa.select(due.c.id,
                  sa.literal("Pseudonym ") + sa.func.upper(sa.func.substr(
                      sa.func.md5(sa.cast(due.c.id, sa.Text)), 1, 8)),
                  sa.literal("inactivity"), sa.literal("approved"),
                  sa.literal(naive(stamp)), sa.literal(naive(stamp))))
    status = sa.update(User).where(User.id.in_(sa.select(ErasureCase.user_id))).values(
        status=AccountStatus.ERASURE_PENDING)
    return compiled(select), [compiled(cases), compiled(status), compiled(warn)]


def timed(fn, runs: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def one_size(size: int) -> dict:
    import time_machine

    from portal.clock import now
    from portal.db import db
    from rq import Queue

    from portal.jobs import get_connection
    from portal.retention.tasks import inactivity_sweep

    url, drop = create_database()
    try:
        app = make_app(url)
        stamp = now()
        started = time.perf_counter()
        generate(size, stamp)
        generated = time.perf_counter() - started
        select_sql, dml_sql = bare_statements(stamp)

        def bare_select():
            with db.engine.connect() as conn:
                return len(conn.exec_driver_sql(select_sql).fetchall())

        def bare_dml():
            with db.engine.connect() as conn:
                with conn.begin() as tx:
                    for statement in dml_sql:
                        conn.exec_driver_sql(statement)
                    tx.rollback()

        dml = timed(bare_dml)
        # The rolled-back writes leave dead row versions that the next reader would have to
        # visit (and set hint bits on): clean them, so the SELECT and the sweep that follow
        # meet the same tables.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        selected = bare_select()
        bare = timed(bare_select)
        redis.Redis.from_url(REDIS_URL).flushdb()
        rss_before = rss_mb()
        with app.app_context(), time_machine.travel(stamp - timedelta(days=400), tick=True):
            inactivity_sweep()  # warm-up, as for the bare SQL: nothing is due a year earlier
        with app.app_context(), time_machine.travel(stamp, tick=True):
            sweeps = []
            for _ in range(3):  # the sweep only reads and enqueues: it can run again
                redis.Redis.from_url(REDIS_URL).flushdb()
                started = time.perf_counter()
                result = inactivity_sweep()
                sweeps.append(time.perf_counter() - started)
            sweep = statistics.median(sweeps)
            batches = [job for job in Queue("default", connection=get_connection()).get_jobs()
                       if job.func_name.endswith("_inactive_batch")]
            started = time.perf_counter()
            for job in batches:  # what the workers do, one batch after the other
                job.func(*job.args)
            drain = time.perf_counter() - started
            cases = db.session.scalar(sa.text("SELECT count(*) FROM erasure_cases"))
            marked = db.session.scalar(sa.text(
                "SELECT count(*) FROM users WHERE inactivity_warned_at >= :at"), {"at": stamp})
        redis.Redis.from_url(REDIS_URL).flushdb()
        return {"size": size, "generated_s": generated, "selected": selected,
                "warnings": result["warnings"], "erasures": result["erasures"],
                "batches": len(batches), "cases": cases, "marked": marked,
                "bare_select_s": bare, "bare_dml_s": dml, "sweep_s": sweep, "drain_s": drain,
                "rss_before_mb": rss_before, "rss_peak_mb": rss_mb()}
    finally:
        drop()


# --- the report -----------------------------------------------------------------------------

def child(size: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.retention", "--size", str(size)],
                         check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, help="run one size in this process (JSON out)")
    args = parser.parse_args()
    if args.size:
        print(json.dumps(one_size(args.size)))
        return
    results = {size: child(size) for size in SIZES}
    for size, r in results.items():
        label = f"{size:,}".replace(",", " ")
        print(f"--- {label} accounts (data made in {r['generated_s']:.1f} s) ---")
        print(f"due: {r['warnings']} for the warning, {r['erasures']} for deletion "
              f"(bare SQL selected {r['selected']} ids); {r['batches']} batch jobs")
        print(f"sweep (inactivity_sweep: select + enqueue): {r['sweep_s'] * 1000:9.1f} ms")
        print(f"bare SQL, same selection (SELECT):          {r['bare_select_s'] * 1000:9.1f} ms"
              f"   ratio sweep/bare: {r['sweep_s'] / r['bare_select_s']:.2f}  (target <= 3)")
        print(f"batch jobs run in turn (the writes):         {r['drain_s'] * 1000:9.1f} ms"
              f"   -> {r['marked']} marked, {r['cases']} erasure cases")
        print(f"bare SQL, same writes (rolled back):         {r['bare_dml_s'] * 1000:9.1f} ms"
              f"   ratio jobs/bare: {r['drain_s'] / r['bare_dml_s']:.2f}")
        print(f"peak RSS: {r['rss_peak_mb']:.1f} MB (before the sweep: "
              f"{r['rss_before_mb']:.1f} MB)")
    big, small = (results[s]["rss_peak_mb"] for s in SIZES)
    print(f"RSS 100 000 / 1 000 000: {small / big:.3f} "
          f"({abs(small - big) / big * 100:.1f} % apart)")
    print("The sweep only reads and hands out batches of ids; the batch jobs mark the "
          "warnings and create the erasure cases (the reconciler then queues their steps). "
          "The warning mails and the erasure steps are jobs too, not timed here.")


if __name__ == "__main__":
    main()
