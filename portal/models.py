"""Imports every model so that metadata (and Alembic) sees the whole schema."""
from portal.audit import AuditEvent  # noqa: F401
from portal.auth.models import AuthSession, LinkToken, User  # noqa: F401
from portal.mail.models import MailMessage  # noqa: F401
