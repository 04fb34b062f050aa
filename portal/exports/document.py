"""The content of an export, once: a JSON-ready document built from the register.

Both files come from this one structure: the JSON file is this document serialised, and the
PDF template (templates/pdf/export.html) renders the very same dict. The Art. 15 information
of each category (purposes, legal basis, retention, recipients, source) is taken from
portal.processing.REGISTER, never written again here. Human-readable strings are rendered in
the user's language by the caller (flask_babel.force_locale); data values are codes, numbers
and ISO 8601 times with an offset, so the JSON is machine-readable.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import current_app

from portal.clock import STOCKHOLM
from portal.consent.models import COOKIE_PURPOSES, MARKETING_PURPOSES
from portal.exports.collect import Collected
from portal.exports.models import Export
from portal.i18n import lazy_gettext as _l
from portal.processing import REGISTER, Category

SCHEMA_URL = "https://cowrite.se/schemas/export-v1.json"
VERSION = 1
IMY_URL = "https://www.imy.se/"

# The same wording as the privacy policy (templates/pages/privacy.html), so it reads (and is
# translated) the same everywhere.
RIGHTS_INTRO = _l("Under the EU data protection regulation (GDPR) you have the right to:")
RIGHTS = (
    _l("find out what data we have about you and get a copy of it (right of access)"),
    _l("have incorrect data corrected (right to rectification)"),
    _l("have your data erased (right to erasure)"),
    _l("ask us to limit how we use your data for a while, for example while we check if the "
       "data is correct (right to restriction)"),
    _l("get your data in a machine-readable file that you can take to another service (right "
       "to data portability)"),
    _l("object to how we use your data, for example for marketing (right to object)"),
)
COMPLAINT = _l("You also have the right to complain to the Swedish Authority for Privacy "
               "Protection (Integritetsskyddsmyndigheten, IMY). IMY was formerly called "
               "Datainspektionen.")
NO_AUTOMATED_DECISIONS = _l("We make no decisions about you that are based solely on automated "
                            "processing, and we do not use your data for profiling (GDPR "
                            "Art. 22).")
SUPERVISORY_AUTHORITY = _l("Swedish Authority for Privacy Protection (Integritetsskyddsmyndigheten, "
                           "IMY)")


def reference(export: Export) -> str:
    """The export's reference, e.g. EXP-2026-000042 (year requested, Stockholm time)."""
    year = export.requested_at.astimezone(STOCKHOLM).year if export.requested_at else 0
    return f"EXP-{year}-{export.id:06d}"


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with an explicit offset (UTC), to the second."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def _organisation(org) -> dict | None:
    if org is None:
        return None
    return {"id": org.id, "name": org.name, "org_number": org.org_number,
            "kind": str(org.kind)}


def _consent_event(event) -> dict:
    return {"at": iso(event.at), "purpose": str(event.purpose), "granted": event.granted,
            "source": str(event.source)}


def _consents(data: Collected, purposes) -> dict:
    history = [e for e in data.consents if e.purpose in purposes]
    current: dict[str, bool | None] = {str(p): None for p in purposes}
    for event in reversed(history):  # oldest first: the last one written wins
        current[str(event.purpose)] = event.granted
    return {"current": current, "history": [_consent_event(e) for e in history]}


def _profile(data: Collected) -> dict:
    u = data.user
    return {"name": u.name, "email": u.email, "email_verified_at": iso(u.email_verified_at),
            "phone": u.phone, "org_number": u.org_number, "language": u.locale,
            "role": str(u.role), "account_status": str(u.status),
            "created_at": iso(u.created_at), "last_active_at": iso(u.last_active_at),
            "policy_version": u.policy_version,
            "policy_accepted_at": iso(u.policy_accepted_at)}


def _security(data: Collected) -> dict:
    u = data.user
    return {
        "password": {"set": u.password_hash is not None,
                     "changed_at": iso(u.password_changed_at)},
        "sessions": [{"created_at": iso(s.created_at), "last_seen_at": iso(s.last_seen_at)}
                     for s in data.sessions],
        "emailed_links": [{"purpose": str(t.purpose), "created_at": iso(t.created_at),
                           "expires_at": iso(t.expires_at), "used_at": iso(t.used_at),
                           "new_email": t.new_email} for t in data.link_tokens],
    }


def _access(data: Collected) -> dict:
    u = data.user
    return {"access_source": str(u.access_source) if u.access_source else None,
            "organisation": _organisation(data.organisation(u.organisation_id))}


def _texts(data: Collected) -> dict:
    return {"texts": [{"id": t.id, "title": t.title, "kind": str(t.kind),
                       "shared_with_coach": t.shared_with_coach,
                       "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
                       "body": t.body} for t in data.texts]}


def _coach(data: Collected) -> dict:
    names = {link.id: link.coach_name for link in data.coach_links}
    return {
        "links": [{"id": link.id, "coach_name": link.coach_name,
                   "coach_email": link.coach_email,
                   "organisation": _organisation(data.organisation(link.organisation_id)),
                   "status": str(link.status), "invited_at": iso(link.invited_at),
                   "invite_expires_at": iso(link.invite_expires_at),
                   "accepted_at": iso(link.accepted_at), "ended_at": iso(link.ended_at)}
                  for link in data.coach_links],
        "reads": [{"at": iso(read.at), "link_id": read.link_id,
                   "coach_name": names.get(read.link_id, ""), "text_id": read.text_id,
                   "text_title": read.text_title} for read in data.coach_reads],
    }


def _exports(data: Collected) -> dict:
    return {"exports": [{"reference": reference(e), "status": str(e.status),
                         "requested_at": iso(e.requested_at), "started_at": iso(e.started_at),
                         "finished_at": iso(e.finished_at), "expires_at": iso(e.expires_at),
                         "size": e.size, "sha256": e.sha256} for e in data.exports]}


def _logins(data: Collected) -> dict:
    return {"logins": [{"at": iso(e.at), "succeeded": e.succeeded, "network": e.ip_prefix,
                        "browser": e.browser} for e in data.logins]}


def _usage(data: Collected) -> dict:
    return {"events": [{"at": iso(e.at), "kind": e.kind,
                        "organisation": _organisation(data.organisation(e.organisation_id))}
                       for e in data.usage]}


def _messages(data: Collected) -> dict:
    # Subjects and addresses only: a message body may hold a live single-use link.
    return {"messages": [{"created_at": iso(m.created_at), "sent_at": iso(m.sent_at),
                          "kind": m.template, "subject": m.subject, "to_address": m.to_addr,
                          "to_name": m.to_name, "status": str(m.status)}
                         for m in data.messages]}


def _actor(event, user_id: int) -> str:
    if event.actor_id is None:
        return "service"
    return "you" if event.actor_id == user_id else "someone_else"


def _activity(data: Collected) -> dict:
    uid = data.user.id
    return {"events": [{"at": iso(e.at), "action": e.action, "actor": _actor(e, uid),
                        "actor_id": e.actor_id, "details": e.details or {}, "hash": e.hash}
                       for e in data.activity]}


DATA_BUILDERS = {
    "profile": _profile,
    "security": _security,
    "access": _access,
    "texts": _texts,
    "coach": _coach,
    "marketing": lambda data: _consents(data, MARKETING_PURPOSES),
    "cookies": lambda data: _consents(data, COOKIE_PURPOSES),
    "requests": lambda data: {"requests": list(data.requests)},
    "exports": _exports,
    "logins": _logins,
    "usage": _usage,
    "messages": _messages,
    "activity": _activity,
}


def _category(category: Category, data: Collected) -> dict:
    return {
        "key": category.key,
        "title": str(category.title),
        "description": str(category.description),
        "purposes": [str(p) for p in category.purposes],
        "legal_basis": str(category.legal_basis),
        "retention": [str(r) for r in category.retention],
        "recipients": [str(r) for r in category.recipients],
        "source": str(category.source),
        "data": DATA_BUILDERS[category.key](data),
    }


def build_document(data: Collected, export: Export, generated_at: datetime,
                   language: str) -> dict:
    """The whole export as plain JSON types (call inside force_locale(language))."""
    return {
        "schema": SCHEMA_URL,
        "version": VERSION,
        "reference": reference(export),
        "generated_at": iso(generated_at),
        "language": language,
        "controller": {"name": "Cowrite AB",
                       "data_protection_officer": current_app.config["DPO_EMAIL"]},
        "supervisory_authority": {"name": str(SUPERVISORY_AUTHORITY), "url": IMY_URL},
        "rights": {"intro": str(RIGHTS_INTRO), "rights": [str(r) for r in RIGHTS],
                   "complaint": str(COMPLAINT)},
        "automated_decision_making": {"used": False, "text": str(NO_AUTOMATED_DECISIONS)},
        "categories": [_category(category, data) for category in REGISTER],
    }
