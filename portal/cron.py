"""Periodic jobs, registered with RQ's own cron scheduler (`python worker.py --cron`)."""
from rq import cron

from portal.coach.tasks import expire_invitations
from portal.exports.tasks import expire_exports
from portal.jobs import reconcile
from portal.retention.tasks import purge_unverified

cron.register(reconcile, queue_name="default", interval=60, job_timeout=300)
cron.register(purge_unverified, queue_name="default", cron="17 * * * *", job_timeout=600)
cron.register(expire_exports, queue_name="default", cron="*/10 * * * *", job_timeout=600)
cron.register(expire_invitations, queue_name="default", cron="23 * * * *", job_timeout=600)
from portal.retention.tasks import inactivity_sweep  # noqa: E402

cron.register(inactivity_sweep, queue_name="default", cron="7 3 * * *", job_timeout=3600)
