"""Legal deadlines for rights requests (GDPR Art. 12(3)): one month, extendable once by up to
two more months, the extension decided (and explained) within the first month.

Months are calendar months in Stockholm: received 31 January → due 28 (or 29) February.
"""
from __future__ import annotations

from datetime import date, datetime

from dateutil.relativedelta import relativedelta

from portal.clock import STOCKHOLM

MAX_EXTENSION_MONTHS = 2


def local_day(moment: datetime) -> date:
    return moment.astimezone(STOCKHOLM).date()


def due_date(received_at: datetime, extension_months: int = 0) -> date:
    """The last day to answer: received + 1 month (+ the extension)."""
    if not 0 <= extension_months <= MAX_EXTENSION_MONTHS:
        raise ValueError("an extension is 1 or 2 months")
    return local_day(received_at) + relativedelta(months=1 + extension_months)


def can_extend(received_at: datetime, now: datetime, already_extended: bool) -> bool:
    """Only once, and only while the first month is running."""
    return not already_extended and local_day(now) <= due_date(received_at)


def days_left(received_at: datetime, now: datetime, extension_months: int = 0) -> int:
    """Whole days until the due date (negative when overdue)."""
    return (due_date(received_at, extension_months) - local_day(now)).days
