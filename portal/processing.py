"""The register of processing: every category of personal data the portal holds, and why.

One structure feeds the "Mina uppgifter" page, the exports and the DPO's record of processing
(GDPR Art. 15(1) and Art. 30). `fields` names the database columns each category covers; a
test proves that every user-linked column belongs to a category, so nothing is held unseen.
"""
from __future__ import annotations

from dataclasses import dataclass

from portal.i18n import lazy_gettext as _l


# Shared wordings, so each is written (and translated) once.
CONTRACT = _l("Contract (GDPR Art. 6(1)(b)): needed to provide the service you signed up for.")
LEGITIMATE = _l("Legitimate interest (GDPR Art. 6(1)(f))")
LEGAL_OBLIGATION = _l("Legal obligation (GDPR Art. 6(1)(c))")
WHILE_ACTIVE = _l("As long as your account is active. An account unused for 6 months is "
                  "deleted; we tell you 2 weeks before.")
AFTER_ERASURE = _l("After an erasure request it is pseudonymised for 30 + 30 days, then "
                   "deleted.")
FROM_YOU = _l("You, when you registered or used the portal.")
FROM_SERVICE = _l("Created by the service while you use it.")
SUBPROCESSORS = _l("Our processors for hosting and e-mail delivery, bound by data processing "
                   "agreements.")
COACH = _l("Your job coach (only what you share, only while the link stands).")
COACH_COMPANY = _l("The matching company your job coach works for, when it is invoiced.")
ACCESS_ORG = _l("The organisation that gave you access (for invoicing).")


@dataclass(frozen=True)
class Category:
    key: str
    title: object
    description: object
    purposes: tuple
    legal_basis: object
    retention: tuple
    recipients: tuple
    source: object
    fields: tuple[str, ...]


REGISTER: tuple[Category, ...] = (
    Category(
        key="profile",
        title=_l("Profile"),
        description=_l("Your name, e-mail address, phone number, organisation number and "
                       "language."),
        purposes=(_l("To create texts tailored to you and to contact you about your account."),),
        legal_basis=CONTRACT,
        retention=(WHILE_ACTIVE, AFTER_ERASURE),
        recipients=(COACH, COACH_COMPANY, ACCESS_ORG, SUBPROCESSORS),
        source=FROM_YOU,
        fields=("users.name", "users.email", "users.email_verified_at", "users.phone",
                "users.org_number", "users.locale", "users.role", "users.status",
                "users.created_at", "users.last_active_at", "users.policy_version",
                "users.policy_accepted_at", "users.inactivity_warned_at"),
    ),
    Category(
        key="security",
        title=_l("Login and security data"),
        description=_l("Your password (stored only as an irreversible argon2 hash), your open "
                       "sessions and unused links we have e-mailed you."),
        purposes=(_l("To let only you into your account and to protect it."),),
        legal_basis=_l("Contract (GDPR Art. 6(1)(b)) and the duty to keep data secure "
                       "(GDPR Art. 32)."),
        retention=(_l("Sessions end after 2 hours without activity and at the latest after "
                      "12 hours. E-mailed links stop working after use or at the latest after "
                      "7 days."), WHILE_ACTIVE),
        recipients=(SUBPROCESSORS,),
        source=FROM_SERVICE,
        fields=("users.password_hash", "users.password_changed_at", "users.totp_secret",
                "users.totp_enrolled_at", "users.totp_last_step",
                "auth_sessions.token_hash", "auth_sessions.created_at",
                "auth_sessions.last_seen_at", "link_tokens.purpose", "link_tokens.token_hash",
                "link_tokens.created_at", "link_tokens.expires_at", "link_tokens.used_at",
                "link_tokens.new_email"),
    ),
    Category(
        key="access",
        title=_l("Access source and organisation"),
        description=_l("How you got access to Cowrite, and which organisation pays for it."),
        purposes=(_l("To know who gives you access and whom to invoice for your use."),),
        legal_basis=CONTRACT,
        retention=(WHILE_ACTIVE, AFTER_ERASURE),
        recipients=(ACCESS_ORG,),
        source=FROM_YOU,
        fields=("users.access_source", "users.organisation_id"),
    ),
    Category(
        key="texts",
        title=_l("Your texts"),
        description=_l("The cover letters, CVs and other texts you write in Cowrite, and "
                       "whether each is shared with your job coach."),
        purposes=(_l("To write and keep your texts, and to share the ones you choose with "
                     "your job coach."),),
        legal_basis=CONTRACT,
        retention=(WHILE_ACTIVE, _l("Deleted at once when an erasure request is approved.")),
        recipients=(COACH, SUBPROCESSORS),
        source=FROM_YOU,
        fields=("texts.title", "texts.kind", "texts.body", "texts.shared_with_coach",
                "texts.created_at", "texts.updated_at"),
    ),
    Category(
        key="coach",
        title=_l("Job coach links and their read log"),
        description=_l("The job coach you have given access to your shared texts, and every "
                       "time the coach read one of them."),
        purposes=(_l("To let your job coach help you, and to show you exactly what the coach "
                     "has read."),),
        legal_basis=CONTRACT,
        retention=(WHILE_ACTIVE, AFTER_ERASURE),
        recipients=(COACH, COACH_COMPANY),
        source=FROM_YOU,
        fields=("coach_links.coach_id", "coach_links.organisation_id", "coach_links.coach_email",
                "coach_links.coach_name", "coach_links.status", "coach_links.invite_token_hash",
                "coach_links.invited_at", "coach_links.invite_expires_at",
                "coach_links.accepted_at", "coach_links.ended_at", "coach_reads.link_id",
                "coach_reads.text_id", "coach_reads.text_title", "coach_reads.at"),
    ),
    Category(
        key="marketing",
        title=_l("Marketing choices and their history"),
        description=_l("Whether you want our newsletter and offers, and every change you made."),
        purposes=(_l("To send newsletters and offers only to those who have not said no, and "
                     "to be able to show your choices."),),
        legal_basis=_l("Legitimate interest (GDPR Art. 6(1)(f)) for marketing to customers; "
                       "you can object at any time and it stops at once (Art. 21(2)–(3))."),
        retention=(WHILE_ACTIVE,),
        recipients=(SUBPROCESSORS,),
        source=FROM_YOU,
        fields=("consent_events.purpose", "consent_events.granted", "consent_events.source",
                "consent_events.at"),
    ),
    Category(
        key="cookies",
        title=_l("Cookie choices"),
        description=_l("Which kinds of cookies you accepted. Your choice is kept in a cookie in "
                       "your browser and, when you are logged in, in the history of your "
                       "choices."),
        purposes=(_l("To respect and be able to show your choice."),),
        legal_basis=_l("Legal obligation (GDPR Art. 7(1) and the Swedish Electronic "
                       "Communications Act) to be able to show consent."),
        retention=(_l("The cookie for 180 days; the history as long as your account is "
                      "active."),),
        recipients=(_l("No one."),),
        source=FROM_YOU,
        fields=(),
    ),
    Category(
        key="requests",
        title=_l("Requests about your rights"),
        description=_l("Requests you have made to us under the GDPR (for example erasure or "
                       "restriction), with their history and our answers."),
        purposes=(_l("To handle your requests within the legal deadlines and show that we "
                     "did."),),
        legal_basis=_l("Legal obligation (GDPR Art. 12 and Art. 5(2))"),
        retention=(WHILE_ACTIVE, AFTER_ERASURE),
        recipients=(_l("Our data protection officer."),),
        source=FROM_YOU,
        fields=tuple(f"rights_requests.{c}" for c in (
            "reference", "kind", "status", "details", "signature_name", "declaration_at",
            "received_at", "due_on", "extension_months", "extension_reason", "decided_at",
            "decided_by", "decision_reason", "receipt_payload", "receipt_signature",
            "receipt_blob_id", "id_verified_by", "id_verified_at"))
        + tuple(f"request_uploads.{c}" for c in (
            "request_id", "purpose", "received_kind", "received_size", "sha256", "pages",
            "blob_id", "created_at", "destroyed_at"))
        + tuple(f"request_events.{c}" for c in ("request_id", "at", "actor_id", "action", "note")),
    ),
    Category(
        key="exports",
        title=_l("Exports of your data"),
        description=_l("The copies of your data you have asked for (PDF and JSON)."),
        purposes=(_l("To give you a copy of your data and let you take it elsewhere."),),
        legal_basis=_l("Legal obligation (GDPR Art. 15(3) and Art. 20)"),
        retention=(_l("Each export is deleted 7 days after it is ready."),),
        recipients=(_l("Only you."),),
        source=FROM_SERVICE,
        fields=("exports.status", "exports.progress", "exports.step", "exports.error",
                "exports.requested_at", "exports.started_at", "exports.finished_at",
                "exports.expires_at", "exports.blob_id", "exports.size", "exports.sha256",
                "stored_blobs.ref", "stored_blobs.kind", "stored_blobs.data",
                "stored_blobs.created_at"),
    ),
    Category(
        key="logins",
        title=_l("Login history"),
        description=_l("When you logged in, from which network (the address shortened so it "
                       "does not point to one device) and which kind of browser."),
        purposes=(_l("To let you and us notice logins that were not yours."),),
        legal_basis=LEGITIMATE,
        retention=(WHILE_ACTIVE,),
        recipients=(_l("No one."),),
        source=FROM_SERVICE,
        fields=("login_events.at", "login_events.succeeded", "login_events.ip_prefix",
                "login_events.browser"),
    ),
    Category(
        key="usage",
        title=_l("Usage records for invoicing"),
        description=_l("One record each time you create a text, with the organisation that "
                       "pays for it."),
        purposes=(_l("To invoice the organisation that gave you access, based on use."),),
        legal_basis=_l("Contract (GDPR Art. 6(1)(b)); invoices are kept as the Swedish "
                       "Bookkeeping Act (bokföringslagen) requires (Art. 17(3)(b))."),
        retention=(WHILE_ACTIVE, AFTER_ERASURE,
                   _l("Invoices built from them are kept for 7 years, as bokföringslagen "
                      "requires.")),
        recipients=(COACH_COMPANY, ACCESS_ORG),
        source=FROM_SERVICE,
        fields=("usage_events.organisation_id", "usage_events.kind", "usage_events.at"),
    ),
    Category(
        key="messages",
        title=_l("Messages we have sent you"),
        description=_l("The e-mails the portal has sent you. Once a message is sent we keep "
                       "only when, what kind and to which address, not its content."),
        purposes=(_l("To deliver messages and to be able to show what we have sent."),),
        legal_basis=CONTRACT,
        retention=(WHILE_ACTIVE,),
        recipients=(SUBPROCESSORS,),
        source=FROM_SERVICE,
        fields=("mail_messages.template", "mail_messages.to_addr", "mail_messages.to_name",
                "mail_messages.subject", "mail_messages.body_text", "mail_messages.body_html",
                "mail_messages.headers", "mail_messages.status", "mail_messages.attempts",
                "mail_messages.last_error", "mail_messages.created_at",
                "mail_messages.sent_at", "mail_messages.attachment_blob_id",
                "mail_messages.attachment_name"),
    ),
    Category(
        key="activity",
        title=_l("Activity log"),
        description=_l("A tamper-evident log of important events in your account: who did "
                       "what, and when. It holds codes, not your texts or contact details."),
        purposes=(_l("To show who has done what with your data, and to detect misuse."),),
        legal_basis=_l("Legal obligation (GDPR Art. 5(2) and Art. 32)"),
        retention=(WHILE_ACTIVE, AFTER_ERASURE),
        recipients=(_l("Our data protection officer."),),
        source=FROM_SERVICE,
        fields=("erasure_cases.pseudonym", "erasure_cases.reason", "erasure_cases.step",
                "erasure_cases.due_at", "erasure_cases.approved_at", "erasure_cases.approved_by",
                "erasure_cases.pseudonymised_at", "erasure_cases.invoicing_closed_at",
                "erasure_cases.deleted_at", "erasure_cases.confirmation_mail_id",
                "audit_events.at", "audit_events.actor_id", "audit_events.action",
                "audit_events.details", "audit_events.prev_hash", "audit_events.hash"),
    ),
)

BY_KEY = {category.key: category for category in REGISTER}
