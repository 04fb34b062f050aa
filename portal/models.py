"""Imports every model so that metadata (and Alembic) sees the whole schema."""
from portal.audit import AuditEvent  # noqa: F401
from portal.auth.models import AuthSession, LinkToken, LoginEvent, User  # noqa: F401
from portal.billing.models import Organisation, UsageEvent  # noqa: F401
from portal.coach.models import CoachLink, CoachRead  # noqa: F401
from portal.consent.models import ConsentEvent, DailyPageView  # noqa: F401
from portal.exports.models import Export  # noqa: F401
from portal.mail.models import MailMessage  # noqa: F401
from portal.requests.models import RequestEvent, RequestUpload, RightsRequest  # noqa: F401
from portal.retention.models import ErasureCase  # noqa: F401
from portal.storage import StoredBlob  # noqa: F401
from portal.texts.models import Text  # noqa: F401
