"""Periodic retention jobs (registered with RQ's cron in portal/cron.py)."""
from __future__ import annotations

import logging

from portal.auth.services import purge_unverified_accounts
from portal.db import db

log = logging.getLogger(__name__)


def purge_unverified() -> int:
    """Delete registrations that were never confirmed within seven days."""
    count = purge_unverified_accounts()
    db.session.commit()
    if count:
        log.info("deleted %d unverified registrations", count)
    return count
