"""The RQ worker (and, with --cron, RQ's cron scheduler) for Integritetsportalen.

    python worker.py            process jobs (scale by starting more of these)
    python worker.py --cron     enqueue the periodic jobs (run exactly one per deployment)

The Flask app, WeasyPrint and every task module are imported once in the parent; each job
then runs in a forked work horse that inherits them, inside a fresh app context.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import redis
from rq import Queue, Worker
from rq.cron import CronScheduler

from portal import create_app
from portal.db import db
from portal.jobs import QUEUE_NAMES, redis_connection

log = logging.getLogger("portal.worker")


def preload_heavy_modules() -> None:
    """Import what jobs need so a forked work horse pays nothing for it."""
    import portal.tasks  # noqa: F401
    try:
        import weasyprint  # noqa: F401
    except OSError as exc:  # system libraries missing: PDFs fail, other jobs still run
        log.warning("WeasyPrint unavailable (%s); PDF jobs will fail", exc)


class NoPersonalDataMixin:
    """Failures are kept and logged by type and place only: messages can carry personal data."""

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        return super().handle_job_failure(job, queue, started_job_registry=started_job_registry,
                                          exc_string=sanitise_traceback(exc_string))

    def handle_exception(self, job, *exc_info):
        exc_type = exc_info[0]
        log.error("job %s (%s) failed: %s", job.id, job.func_name,
                  getattr(exc_type, "__name__", exc_type))


class PortalWorker(NoPersonalDataMixin, Worker):
    """A forking worker whose jobs run in the Flask app context."""

    app = None

    def perform_job(self, *args, **kwargs):
        # Connections opened by the parent must not be shared with the forked child.
        if db.engine is not None:
            db.engine.dispose(close=False)
        with self.app.app_context():
            try:
                return super().perform_job(*args, **kwargs)
            finally:
                db.session.remove()


def sanitise_traceback(exc_string: str) -> str:
    """A traceback without exception messages or source lines (they may hold personal data)."""
    kept = []
    for line in exc_string.splitlines():
        if line.startswith('  File "') or line.startswith("Traceback"):
            kept.append(line)
        elif line and not line.startswith(" ") and not line.startswith("During handling"):
            kept.append(line.split(":", 1)[0])  # "ValueError: anna@x.se" -> "ValueError"
    return "\n".join(kept)


def wait_for_redis(conn: redis.Redis) -> None:
    delay = 1.0
    while True:
        try:
            conn.ping()
            return
        except redis.RedisError as exc:
            log.warning("Redis not reachable (%s); retrying in %.0f s", type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cron", action="store_true", help="run the cron scheduler instead")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("weasyprint", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    app = create_app()
    preload_heavy_modules()
    conn = redis_connection(app.config["REDIS_URL"], for_worker=True)
    wait_for_redis(conn)
    if args.cron:
        scheduler = CronScheduler(connection=conn, name="portal-cron")
        scheduler.load_config_from_file("portal.cron")
        scheduler.start()
        return 0
    PortalWorker.app = app
    queues = [Queue(name, connection=conn) for name in QUEUE_NAMES]
    worker = PortalWorker(queues, connection=conn)
    worker.work(with_scheduler=True, burst=args.burst, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
