"""The RQ worker (and, with --cron, RQ's cron scheduler) for Integritetsportalen.

    python worker.py            process jobs (scale by starting more of these)
    python worker.py --cron     enqueue the periodic jobs (run exactly one per deployment)

The Flask app, WeasyPrint and every task module are imported once in the parent; each job
then runs in a forked work horse that inherits them, inside a fresh app context.
"""
from __future__ import annotations

import argparse
import logging
import signal
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


class PortalCron(CronScheduler):
    """RQ's cron scheduler, remembering that a stop was asked for."""

    stopping = False

    def _request_stop(self, signum, frame):
        self.stopping = True
        return super()._request_stop(signum, frame)


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

    stopping = False  # SIGTERM/SIGINT came (RQ's own flag is set only when a job runs)

    def request_stop(self, signum, frame):
        self.stopping = True
        return super().request_stop(signum, frame)

    def abandon(self) -> None:
        """After Redis went away mid-loop: stop the pub/sub listener thread, which would
        otherwise go on retrying beside the next worker."""
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop()
            self.pubsub_thread.join(timeout=1)

    def heartbeat(self, timeout=None, pipeline=None):
        """Register again when Redis came back empty after an outage (this machine's Redis,
        like many, keeps nothing on disk): RQ reconnects by itself, but its worker key is
        gone, and without it the worker is invisible to monitoring and to `rq info`."""
        if pipeline is None:
            try:
                if not self.connection.hexists(self.key, "birth"):
                    log.warning("worker %s: registration lost with Redis; registering again",
                                self.name)
                    self.connection.delete(self.key)
                    self.register_birth()
            except redis.RedisError:
                pass  # still away: RQ's own loop waits and retries
        return super().heartbeat(timeout, pipeline)


def sanitise_traceback(exc_string: str) -> str:
    """A traceback without exception messages or source lines (they may hold personal data)."""
    kept = []
    for line in exc_string.splitlines():
        if line.startswith('  File "') or line.startswith("Traceback"):
            kept.append(line)
        elif line and not line.startswith(" ") and not line.startswith("During handling"):
            kept.append(line.split(":", 1)[0])  # "ValueError: anna@x.se" -> "ValueError"
    return "\n".join(kept)


def wait_for_redis(conn: redis.Redis) -> bool:
    """Wait until Redis answers (backing off up to 30 s); False if SIGTERM or SIGINT comes
    meanwhile, so a stop is never ignored while Redis is away."""
    stop: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        delay = 1.0
        while not stop:
            try:
                conn.ping()
                return True
            except redis.RedisError as exc:
                log.warning("Redis not reachable (%s); retrying in %.0f s",
                            type(exc).__name__, delay)
            deadline = time.monotonic() + delay
            while not stop and time.monotonic() < deadline:
                time.sleep(0.1)
            delay = min(delay * 2, 30)
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
    PortalWorker.app = app
    queues = [Queue(name, connection=conn) for name in QUEUE_NAMES]
    # A Redis outage must not end the process (under honcho, one ending process stops all):
    # wait for Redis, then start again with a fresh registration. A stop is always obeyed.
    while wait_for_redis(conn):
        runner = (PortalCron(connection=conn, name="portal-cron") if args.cron
                  else PortalWorker(queues, connection=conn))
        try:
            if args.cron:
                runner.load_config_from_file("portal.cron")
                runner.start()
            else:
                runner.work(with_scheduler=True, burst=args.burst, logging_level="INFO")
            return 0
        except redis.RedisError as exc:
            if isinstance(runner, PortalWorker):
                runner.abandon()
            if runner.stopping:
                return 0  # stopping while Redis was away: the goodbye could not be written
            log.warning("lost Redis (%s); starting again once it answers", type(exc).__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
