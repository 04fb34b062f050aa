"""Human-readable names for the export feature's codes (and codes the PDF shows that
portal.labels does not name yet)."""
from datetime import datetime

from flask_babel import format_datetime, get_locale

from portal.auth.models import TokenPurpose
from portal.exports.models import ExportStatus
from portal.i18n import lazy_gettext as _l
from portal.labels import EVENT_LABELS, LINK_STATUS_LABELS

STATUS_LABELS = {
    ExportStatus.QUEUED: _l("Queued"),
    ExportStatus.RUNNING: _l("In progress"),
    ExportStatus.READY: _l("Ready"),
    ExportStatus.FAILED: _l("Failed"),
    ExportStatus.EXPIRED: _l("Expired and deleted"),
    ExportStatus.VOIDED: _l("Cancelled and deleted"),
}


TOKEN_PURPOSE_LABELS = {
    TokenPurpose.VERIFY_EMAIL: _l("Confirm your e-mail address"),
    TokenPurpose.RESET_PASSWORD: _l("Choose a new password"),
    TokenPurpose.SET_PASSWORD: _l("Choose a password"),
    TokenPurpose.CHANGE_EMAIL: _l("Confirm a new e-mail address"),
}



def pdf_labels() -> dict:
    return {"export_status": STATUS_LABELS, "event": EVENT_LABELS,
            "token_purpose": TOKEN_PURPOSE_LABELS, "coach_status": LINK_STATUS_LABELS}


# A date and time in running text: Swedish writes "25 november 2026 kl. 22.00".
LONG_PATTERNS = {"sv": "d MMMM y 'kl'. HH.mm", "en": "d MMMM y, HH:mm"}


def when_long(value: datetime | None) -> str:
    """A date and time for running text, in the reader's language (Stockholm time)."""
    if value is None:
        return ""
    locale = get_locale()
    pattern = LONG_PATTERNS.get(locale.language if locale else "sv", LONG_PATTERNS["en"])
    return format_datetime(value, pattern)
