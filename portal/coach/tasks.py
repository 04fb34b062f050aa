"""Periodic coach jobs (registered with RQ's cron in portal/cron.py)."""
from __future__ import annotations

import logging

from portal.coach.services import EXPIRE_BATCH, expire_due_invitations
from portal.db import db

log = logging.getLogger(__name__)


def expire_invitations() -> int:
    """Mark invitations older than 14 days as expired. Idempotent: only waiting ones change."""
    total = 0
    while True:
        count = expire_due_invitations()
        db.session.commit()
        total += count
        if count < EXPIRE_BATCH:
            break
    if total:
        log.info("expired %d coach invitations", total)
    return total
