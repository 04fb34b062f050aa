"""Human-readable, translatable names for the codes stored in the database."""
from flask import current_app
from markupsafe import Markup

from portal import i18n
from portal.auth.models import AccessSource, AccountStatus, Role
from portal.coach.models import LinkStatus
from portal.consent.models import ConsentSource, Purpose
from portal.i18n import lazy_gettext as _l
from portal.mail.models import MailStatus
from portal.texts.models import TextKind

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
    "password.reset_requested": _l("New password requested"),
    "account.registered": _l("Account created"),
    "account.created_by_admin": _l("Account created by an administrator"),
    "account.demo_created": _l("Demo account created"),
    "seed.bulk_created": _l("Test data for load measurements created"),
    "account.email_verified": _l("E-mail address confirmed"),
    "email.change_requested": _l("Change of e-mail address requested"),
    "email.changed": _l("E-mail address changed"),
    "profile.corrected": _l("Details corrected"),
    "consent.changed": _l("Choice changed (marketing or cookies)"),
    "text.created": _l("Text created"),
    "text.updated": _l("Text changed"),
    "text.deleted": _l("Text deleted"),
    "text.share_changed": _l("Sharing with job coach changed"),
    "coach.invited": _l("Job coach invited"),
    "coach.invitation_resent": _l("Job coach invitation sent again"),
    "coach.invitation_cancelled": _l("Job coach invitation cancelled"),
    "coach.invitation_expired": _l("Job coach invitation expired"),
    "coach.link_accepted": _l("Job coach accepted the invitation"),
    "coach.link_revoked": _l("Job coach link ended"),
    "coach.text_read": _l("Your job coach read a text"),
    "organisation.created": _l("Organisation registered"),
    "billing.basis_downloaded": _l("Invoice basis downloaded"),
    "inactivity.warned": _l("Warning sent: the account has not been used for almost six "
                            "months"),
    "inactivity.kept": _l("Account kept with the link in the warning"),
    "erasure.started": _l("Erasure started"),
    "erasure.cancelled": _l("Deletion cancelled: the account was used again"),
    "erasure.invoicing_closed": _l("Invoicing period closed"),
    "erasure.deleted": _l("Deleted for good"),
    "export.requested": _l("Export of your data requested"),
    "export.retried": _l("Export tried again"),
    "export.downloaded": _l("Export downloaded"),
    "export.download_denied": _l("Download refused: the export was not yours"),
    "export.expired": _l("Export deleted after 7 days"),
    "exports.voided": _l("Exports deleted because of an erasure"),
    "request.received": _l("Request received"),
    "request.withdrawn": _l("Request withdrawn by you"),
    "request.upload_destroyed": _l("ID copy destroyed"),
    "request.extended": _l("Deadline extended"),
    "request.approved": _l("Request granted"),
    "request.rejected": _l("Request rejected"),
    "request.needs_completion": _l("Completion asked for"),
    "request.completion_requested": _l("Completion asked for"),
    "request.restriction_lifted": _l("Restriction lifted"),
    "request.completed": _l("Completion received"),
    "request.id_viewed": _l("The data protection officer viewed your ID copy"),
    "totp.enrolled": _l("Authenticator app set up"),
    "totp.verified": _l("Login code accepted"),
    "totp.failed": _l("Wrong login code"),
    "totp.enrol_failed": _l("Wrong code while setting up the authenticator app"),
    "account.restricted": _l("Account restricted"),
    "account.restriction_lifted": _l("Restriction lifted"),
}

STATUS_LABELS = {
    AccountStatus.ACTIVE: _l("Active"),
    AccountStatus.RESTRICTED: _l("Restricted"),
    AccountStatus.ERASURE_PENDING: _l("Erasure in progress"),
    AccountStatus.PSEUDONYMISED: _l("Pseudonymised"),
}

LANGUAGE_LABELS = {"sv": _l("Swedish"), "en": _l("English"), None: _l("Not chosen")}

TEXT_KIND_LABELS = {
    TextKind.PERSONLIGT_BREV: _l("Cover letter"),
    TextKind.CV: _l("CV"),
    TextKind.OVRIGT: _l("Other"),
}

PURPOSE_LABELS = {
    Purpose.NEWSLETTER: _l("Newsletter"),
    Purpose.OFFERS: _l("Offers"),
    Purpose.COOKIES_FUNCTIONAL: _l("Functional cookies"),
    Purpose.COOKIES_STATISTICS: _l("Statistics cookies"),
    Purpose.COOKIES_MARKETING: _l("Marketing cookies"),
}

CONSENT_SOURCE_LABELS = {
    ConsentSource.REGISTRATION: _l("When you registered"),
    ConsentSource.SETTINGS: _l("In your settings"),
    ConsentSource.UNSUBSCRIBE_LINK: _l("Through the link in an e-mail"),
    ConsentSource.COOKIE_BANNER: _l("In the cookie banner"),
}

MAIL_STATUS_LABELS = {
    MailStatus.PENDING: _l("Waiting to be sent"),
    MailStatus.SENT: _l("Sent"),
    MailStatus.FAILED: _l("Could not be delivered"),
}

USAGE_LABELS = {"text_created": _l("Text created")}

# The one wording of a coach link's state: the user's and the coach's pages, Mina uppgifter
# and the export PDF all use it.
LINK_STATUS_LABELS = {
    LinkStatus.INVITED: _l("Invited"),
    LinkStatus.ACTIVE: _l("Link active"),
    LinkStatus.REVOKED: _l("Revoked"),
    LinkStatus.EXPIRED: _l("Invitation expired"),
    LinkStatus.CANCELLED: _l("Invitation cancelled"),
}


_CONTEXT_HTML: dict[tuple[str, str], Markup] = {}


def register_context(category) -> Markup:
    """The Art. 15 context of a register category (purpose, legal basis, retention,
    recipients, source) as HTML. It is the same for everyone, so it is rendered once per
    category and language rather than on every view of "Mina uppgifter" (13 per page);
    with template auto-reload (development) it is rendered every time."""
    env = current_app.jinja_env
    key = (category.key, i18n.locale_id())
    html = None if env.auto_reload else _CONTEXT_HTML.get(key)
    if html is None:
        html = Markup(env.get_template("macros/register.html").module.context(category))
        _CONTEXT_HTML[key] = html
    return html


def jinja_globals() -> dict:
    return {"register_context": register_context,
            "role_labels": ROLE_LABELS, "source_labels": ACCESS_SOURCE_LABELS,
            "event_labels": EVENT_LABELS, "status_labels": STATUS_LABELS,
            "language_labels": LANGUAGE_LABELS, "text_kind_labels": TEXT_KIND_LABELS,
            "purpose_labels": PURPOSE_LABELS, "consent_source_labels": CONSENT_SOURCE_LABELS,
            "mail_status_labels": MAIL_STATUS_LABELS, "usage_labels": USAGE_LABELS,
            "link_status_labels": LINK_STATUS_LABELS,
            "export_status_labels": _export_status_labels(),
            **_request_labels()}


def _export_status_labels() -> dict:
    from portal.exports.labels import STATUS_LABELS

    return STATUS_LABELS


def _request_labels() -> dict:
    from portal.requests.services import KIND_LABELS, STATUS_LABELS

    return {"request_kind_labels": KIND_LABELS, "request_status_labels": STATUS_LABELS}
