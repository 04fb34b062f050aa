"""How fast is an export, and how close to a bare WeasyPrint render? `python -m bench.export`

Creates two reference users in a throwaway database (SQLite under /tmp, or the PostgreSQL
database named by BENCH_DATABASE_URL): 20 and 200 texts of about 2 000 characters, each with
a year of consent changes, coach reads and logins. For each user it then runs the export job
through the real PortalWorker (fork per job from a parent that preloaded the app and
WeasyPrint, exactly as `python worker.py` does) and prints, from one run on this machine:

  end-to-end job time   enqueue -> job finished (RQ's timestamps): fork, collect, JSON, PDF,
                        ZIP, encryption, storage, mail queued (median of --runs)
  bare render           WeasyPrint alone on the very same HTML, in this process (median)
  ratio                 end-to-end / bare render        (target <= 1.15)
  peak RSS              the largest work horse (ru_maxrss of the forked children)

The forked jobs run before any render in this process, so no work horse inherits a warm
WeasyPrint from the bare renders: the bare render is the best case, the job pays its own.
The reference users are seeded in a throwaway child process, so the worker parent holds no
more than `python worker.py` does. Other load on the machine shows in the numbers: the load
average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

WORKDIR = Path(tempfile.mkdtemp(prefix="bench-export-"))
os.environ.setdefault("PORTAL_INSTANCE", str(WORKDIR / "instance"))  # before portal imports

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from rq import Queue  # noqa: E402
from rq.job import Job  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
WORDS = ("jag", "söker", "tjänsten", "som", "lagerchef", "hos", "er", "och", "har", "lång",
         "erfarenhet", "av", "logistik", "ansvar", "kvalitet", "samarbete", "kunder", "team",
         "utveckling", "förbättringar", "i", "år", "på", "Örebro", "Göteborg", "Malmö",
         "arbetat", "med", "planering", "ledarskap", "säkerhet", "truckkort", "mål", "trivs",
         "att", "lösa", "problem", "tillsammans", "ser", "fram", "emot", "träffas", "gärna",
         "min", "styrka", "är", "noggrannhet", "engagemang", "åtagande", "ändringar")


def fake_text(rng: random.Random, length: int = 2000) -> str:
    """Swedish-looking prose of about `length` characters, in paragraphs."""
    out, size = [], 0
    while size < length:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16)))
        sentence = sentence[0].upper() + sentence[1:] + "."
        out.append(sentence)
        size += len(sentence) + 1
        if rng.random() < 0.2:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n")


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{WORKDIR / 'bench.db'}"


def make_app():
    from alembic import command

    from portal import create_app
    from portal.cli import alembic_config

    app = create_app({"DATABASE_URL": database_url(), "REDIS_URL": REDIS_URL,
                      "MAIL_BACKEND": "file", "MAIL_OUTBOX": str(WORKDIR / "outbox"),
                      "RATELIMIT_ENABLED": False})
    with app.app_context():
        command.upgrade(alembic_config(), "head")
    return app


def seed_user(n_texts: int, seed: int) -> int:
    """A reference user: texts, and a year of consent changes, coach reads and logins."""
    from portal import audit
    from portal.auth.models import AccessSource, LoginEvent, User
    from portal.billing.models import Organisation, OrganisationKind, UsageEvent
    from portal.clock import now
    from portal.coach.models import CoachLink, CoachRead, LinkStatus
    from portal.consent.models import ConsentEvent, ConsentSource, Purpose
    from portal.db import db
    from portal.mail.models import MailMessage, MailStatus
    from portal.texts.models import Text, TextKind

    rng = random.Random(seed)
    start = now() - timedelta(days=365)
    org = Organisation(name=f"Matchningsbolaget {seed} AB", kind=OrganisationKind.MATCHNINGSFORETAG)
    db.session.add(org)
    db.session.flush()
    user = User(email=f"referens{n_texts}@exempel.se", name=f"Referens Användare {n_texts}",
                password_hash="$argon2id$bench", locale="sv", email_verified_at=start,
                access_source=AccessSource.STOD_OCH_MATCHNING, organisation_id=org.id,
                phone="+46701234567", created_at=start)
    db.session.add(user)
    db.session.flush()
    texts = []
    for i in range(n_texts):
        at = start + timedelta(days=365 * i / n_texts)
        texts.append(Text(user_id=user.id, title=f"Personligt brev {i + 1} till Företag {i} AB",
                          kind=rng.choice(list(TextKind)), body=fake_text(rng),
                          shared_with_coach=i % 3 == 0, created_at=at, updated_at=at))
        db.session.add(UsageEvent(user_id=user.id, organisation_id=org.id, at=at))
    db.session.add_all(texts)
    link = CoachLink(user_id=user.id, organisation_id=org.id, coach_email="coach@exempel.se",
                     coach_name="Coach Coachsson", status=LinkStatus.ACTIVE, invited_at=start,
                     invite_expires_at=start + timedelta(days=14), accepted_at=start)
    db.session.add(link)
    db.session.flush()
    shared = [t for t in texts if t.shared_with_coach] or texts
    for day in range(0, 365, 2):  # a coach read every other day
        text = rng.choice(shared)
        db.session.add(CoachRead(link_id=link.id, user_id=user.id, text_id=text.id,
                                 text_title=text.title, at=start + timedelta(days=day)))
    for day in range(365):  # a login a day, a failed attempt now and then
        at = start + timedelta(days=day, hours=8)
        db.session.add(LoginEvent(user_id=user.id, at=at, succeeded=day % 17 != 0,
                                  ip_prefix="192.0.2.0/24", browser="Firefox"))
    purposes = list(Purpose)
    for month in range(24):  # consent changes twice a month
        db.session.add(ConsentEvent(user_id=user.id, purpose=purposes[month % len(purposes)],
                                    granted=month % 2 == 0, source=ConsentSource.SETTINGS,
                                    at=start + timedelta(days=15 * month)))
    for month in range(12):
        db.session.add(MailMessage(user_id=user.id, template="newsletter_example",
                                   to_addr=user.email, subject=f"Nyhetsbrev {month + 1}",
                                   status=MailStatus.SENT, created_at=start + timedelta(days=30 * month)))
    for text in texts:
        db.session.flush()
        audit.record("text.created", actor_id=user.id, subject_id=user.id, text_id=text.id)
    db.session.commit()
    return user.id


def seed_in_child(app, sizes: list[int]) -> None:
    """Seed in a throwaway process, so the worker parent holds no more than in production."""
    import multiprocessing

    def seed() -> None:
        from portal.db import db

        db.engine.dispose(close=False)
        with app.app_context():
            for n in sizes:
                seed_user(n, seed=n)

    child = multiprocessing.get_context("fork").Process(target=seed)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit("seeding the reference users failed")


def new_export(user_id: int) -> int:
    from portal.clock import now
    from portal.db import db
    from portal.exports.models import Export

    export = Export(user_id=user_id, requested_at=now())
    db.session.add(export)
    db.session.commit()
    return export.id


def run_forked(app, conn, export_id: int) -> float:
    """One export through the real PortalWorker: enqueue -> finished, in seconds."""
    import worker

    from portal.exports.services import JOB, job_id

    queue = Queue("default", connection=conn)
    job = queue.enqueue(JOB, export_id, job_id=job_id(export_id), job_timeout=600)
    w = worker.PortalWorker([queue], connection=conn)
    w.work(burst=True, logging_level="ERROR")
    job = Job.fetch(job.id, connection=conn)
    if job.get_status() != "finished":
        raise SystemExit(f"export job {export_id} did not finish: {job.get_status()}")
    return (job.ended_at - job.enqueued_at).total_seconds()


def export_html(export_id: int) -> str:
    """The exact HTML the job rendered for this export (rebuilt, same data)."""
    from flask_babel import force_locale

    from portal.auth.models import User
    from portal.db import db
    from portal.exports import render
    from portal.exports.collect import collect
    from portal.exports.document import build_document
    from portal.exports.models import Export

    export = db.session.get(Export, export_id)
    user = db.session.get(User, export.user_id)
    with force_locale(user.locale):
        document = build_document(collect(user.id), export, export.finished_at, user.locale)
        return render.export_html(document, name=user.name, generated_at=export.finished_at)


def bare_render(html: str) -> tuple[float, bytes]:
    from portal.exports import render

    started = time.perf_counter()
    pdf = render.render_pdf(html)
    return time.perf_counter() - started, pdf


def pages(pdf: bytes) -> int:
    path = WORKDIR / "probe.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="jobs and renders per user")
    args = parser.parse_args(argv)

    import worker

    load_before = f"{os.getloadavg()[0]:.2f}"
    app = make_app()
    worker.preload_heavy_modules()
    worker.PortalWorker.app = app
    conn = redis.Redis.from_url(REDIS_URL)
    conn.flushdb()
    users = {20: None, 200: None}
    results: dict[int, dict] = {}
    try:
        seed_in_child(app, list(users))
        with app.app_context():
            from portal.auth.models import User
            from portal.db import db

            for n in users:
                users[n] = db.session.scalar(sa.select(User.id).where(
                    User.email == f"referens{n}@exempel.se"))
            db.session.remove()
        for n, user_id in users.items():  # every forked job before any render in this process
            with app.app_context():
                ids = [new_export(user_id) for _ in range(args.runs)]
            times = [run_forked(app, conn, export_id) for export_id in ids]
            results[n] = {"job": statistics.median(times), "jobs": times,
                          "rss": children_peak_mb(), "export_id": ids[-1]}
        for n in users:
            with app.app_context():
                from portal.db import db
                from portal.exports.models import Export

                html = export_html(results[n]["export_id"])
                size = db.session.get(Export, results[n]["export_id"]).size
                db.session.remove()
            renders = [bare_render(html) for _ in range(args.runs)]
            results[n].update(bare=statistics.median(t for t, _ in renders),
                              pages=pages(renders[-1][1]), pdf=len(renders[-1][1]),
                              zip=size)
    finally:
        conn.flushdb()
        conn.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(WORKDIR, ignore_errors=True)

    print(f"database: {'PostgreSQL' if database_url().startswith('postgres') else 'SQLite'}, "
          f"runs per user: {args.runs}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average before/after: {load_before} / {os.getloadavg()[0]:.2f}")
    print("path: real PortalWorker, fork per job from the preloaded parent")
    header = (f"{'texts':>5} {'pages':>5} {'PDF':>8} {'ZIP':>8} {'end-to-end':>11} "
              f"{'bare render':>11} {'ratio':>6} {'peak RSS':>9}")
    print(header)
    for n, r in results.items():
        print(f"{n:>5} {r['pages']:>5} {r['pdf'] / 1024:>6.0f}kB {r['zip'] / 1024:>6.0f}kB "
              f"{r['job']:>10.2f}s {r['bare']:>10.2f}s {r['job'] / r['bare']:>6.2f} "
              f"{r['rss']:>7.0f}MB")
    print("targets: ratio <= 1.15; 20 texts <= 2 s; peak RSS <= 300 MB for 200 texts")
    for n, r in results.items():
        print(f"  {n} texts, each job: " + ", ".join(f"{t:.2f}s" for t in r["jobs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
