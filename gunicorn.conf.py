"""Production gunicorn settings (see README: scale web processes with WEB_CONCURRENCY)."""
import multiprocessing
import os

bind = os.environ.get("BIND", "0.0.0.0:" + os.environ.get("PORT", "8000"))
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# No query strings in the access log: they may carry personal data.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'


def post_fork(server, worker):
    """Each gunicorn worker opens its own database connections."""
    from portal.db import db

    if db.engine is not None:
        db.engine.dispose(close=False)
