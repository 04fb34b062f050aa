"""Periodic jobs, registered with RQ's own cron scheduler (`python worker.py --cron`)."""
from rq import cron

from portal.jobs import reconcile
from portal.retention.tasks import purge_unverified

cron.register(reconcile, queue_name="default", interval=60, job_timeout=300)
cron.register(purge_unverified, queue_name="default", cron="17 * * * *", job_timeout=600)
