"""Every task module, imported so the worker preloads them and reconcilers register."""
from portal.coach import tasks as coach_tasks  # noqa: F401
from portal.exports import tasks as export_tasks  # noqa: F401
from portal.mail import tasks as mail_tasks  # noqa: F401
from portal.retention import tasks as retention_tasks  # noqa: F401
