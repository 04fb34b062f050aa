"""Human-readable, translatable names for the codes stored in the database."""
from flask_babel import lazy_gettext as _l

from portal.auth.models import AccessSource, Role

ROLE_LABELS = {
    Role.USER: _l("User"),
    Role.COACH: _l("Job coach"),
    Role.DPO: _l("Data protection officer"),
}

ACCESS_SOURCE_LABELS = {
    AccessSource.STOD_OCH_MATCHNING: _l("Stöd och Matchning (Arbetsförmedlingen)"),
    AccessSource.KUNDVAL_RUSTA_OCH_MATCHA: _l("Kundval Rusta och Matcha (Arbetsförmedlingen)"),
    AccessSource.FACKFORBUND: _l("My trade union"),
    AccessSource.INTRESSEORGANISATION: _l("An interest organisation"),
    AccessSource.OMSTALLNINGSFOND: _l("A transition fund"),
    AccessSource.EGEN_BETALNING: _l("I pay for Cowrite myself"),
}

EVENT_LABELS = {
    "login.succeeded": _l("Logged in"),
    "login.failed": _l("Failed login attempt"),
    "logout": _l("Logged out"),
    "sessions.ended": _l("All sessions ended"),
    "password.set": _l("Password changed"),
}


def jinja_globals() -> dict:
    return {"role_labels": ROLE_LABELS, "source_labels": ACCESS_SOURCE_LABELS,
            "event_labels": EVENT_LABELS}
