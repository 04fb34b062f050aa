"""Coach sharing: the user's side (add, resend, cancel, revoke), the invitation, and the
coach area. Thin: load, authorize, validate, call a service, commit once, redirect.

Coach access is checked against the database on every request (`services.link_for_coach`).
When a coach asks for a user whose link has ended, the answer is a 403 page saying that access
has ended (no data of the user on it); a user the coach never had a link with is a 404.
"""
from __future__ import annotations

import hashlib

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   session, url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user

from portal.auth import services as auth_services
from portal.auth.models import Role, User
from portal.auth.services import POLICY_VERSION, LoginResult
from portal.billing.models import OrganisationKind
from portal.coach import services
from portal.coach.forms import (ORG_KIND_LABELS, AddCoachForm, CoachLoginForm,
                                NewCoachAccountForm)
from portal.coach.models import CoachLink
from portal.db import db
from portal.labels import LINK_STATUS_LABELS
from portal.extensions import client_ip, limiter
from portal.forms import ButtonForm
from portal.security import mark_authenticated, recent_auth_required, role_required

bp = Blueprint("coach", __name__)
_INVITE_KEY = "coach_invite"


@bp.context_processor
def _coach_context() -> dict:
    return {"link_status_labels": LINK_STATUS_LABELS, "org_kind_labels": ORG_KIND_LABELS,
            "display_status": services.display_status, "invite_days": services.INVITE_TTL.days}


def _not_redirected(response) -> bool:
    return response.status_code != 302


# --- the user's side ------------------------------------------------------------------------

def _own_link_or_404(link_id: int) -> CoachLink:
    link = services.get_own_link(current_user.id, link_id)
    if link is None:
        abort(404)
    return link


@bp.route("/mina-uppgifter/coach")
@role_required(Role.USER)
def mine():
    links = services.links_for_user(current_user.id)
    current = services.current_link_among(links)
    return render_template(
        "coach/mine.html", current=current, links={link.id: link for link in links},
        history=[link for link in links if current is None or link.id != current.id],
        reads=services.reads_for_user(current_user.id, limit=200),
        organisations=services.organisations_by_id(link.organisation_id for link in links),
        button=ButtonForm())


@bp.route("/mina-uppgifter/coach/ny", methods=["GET", "POST"])
@role_required(Role.USER)
@recent_auth_required
@limiter.limit("10 per hour", key_func=lambda: f"coach-invite:{current_user.id}",
               methods=["POST"], deduct_when=lambda response: response.status_code == 302,
               scope="coach-invite")
def add():
    user = current_user._get_current_object()
    current = services.current_link_for_user(user.id)
    form = AddCoachForm(own_email=user.email, organisations=services.list_organisations())
    action = request.form.get("action")
    if request.method == "GET" or action == "edit":
        return _add_page(form, current)
    if not form.validate_on_submit():
        return _add_page(form, current)
    current_id = str(current.id) if current else ""
    if action != "confirm" or (form.replaces.data or "") != current_id:
        changed = action == "confirm"  # the open link changed after the review was shown
        form.replaces.data = current_id
        return _review_page(form, current, changed=changed)
    organisation = form.chosen_organisation or services.add_organisation(
        form.org_name.data, form.org_number.data, OrganisationKind(form.org_kind.data),
        actor_id=user.id)
    services.invite_coach(user, form.coach_email.data, form.coach_name.data, organisation)
    db.session.commit()
    if current is not None:
        flash(_("Your previous link has been ended."), "success")
    flash(_("We have sent an invitation to %(email)s. The link in it is valid for %(days)d "
            "days.", email=form.coach_email.data, days=services.INVITE_TTL.days), "success")
    return redirect(url_for("coach.mine"))


def _add_page(form: AddCoachForm, current: CoachLink | None):
    return render_template("coach/add.html", form=form, current=current)


def _review_page(form: AddCoachForm, current: CoachLink | None, changed: bool = False):
    organisation = form.chosen_organisation
    return render_template(
        "coach/review.html", form=form, current=current, changed=changed,
        organisation_name=organisation.name if organisation else form.org_name.data,
        organisation_number=organisation.org_number if organisation else form.org_number.data,
        organisation_kind=organisation.kind if organisation else OrganisationKind(
            form.org_kind.data))


@bp.route("/mina-uppgifter/coach/<int:link_id>/skicka-igen", methods=["POST"])
@role_required(Role.USER)
@limiter.limit("5 per hour", key_func=lambda: f"coach-resend:{current_user.id}",
               scope="coach-resend")
def resend(link_id: int):
    link = _own_link_or_404(link_id)
    if ButtonForm().validate_on_submit():
        if services.resend_invitation(current_user._get_current_object(), link):
            db.session.commit()
            flash(_("We have sent the invitation again. The new link is valid for %(days)d "
                    "days; the link in the earlier message no longer works.",
                    days=services.INVITE_TTL.days), "success")
        else:
            flash(_("The invitation is no longer waiting for an answer, so it cannot be sent "
                    "again. Nothing was changed."), "error")
    return redirect(url_for("coach.mine"))


@bp.route("/mina-uppgifter/coach/<int:link_id>/avbryt", methods=["POST"])
@role_required(Role.USER)
def cancel(link_id: int):
    link = _own_link_or_404(link_id)
    if ButtonForm().validate_on_submit():
        if services.cancel_invitation(current_user._get_current_object(), link):
            db.session.commit()
            flash(_("The invitation is withdrawn. The link in it no longer works."), "success")
        else:
            flash(_("The invitation is no longer waiting for an answer, so there is nothing to "
                    "withdraw. Nothing was changed."), "error")
    return redirect(url_for("coach.mine"))


@bp.route("/mina-uppgifter/coach/<int:link_id>/aterkalla", methods=["POST"])
@role_required(Role.USER)
def revoke(link_id: int):
    link = _own_link_or_404(link_id)
    if ButtonForm().validate_on_submit():
        if services.revoke_link(current_user._get_current_object(), link):
            db.session.commit()
            flash(_("The link is ended. Your job coach can no longer read your texts and has "
                    "been told by e-mail."), "success")
        else:
            flash(_("The link is not active, so there is nothing to end. Nothing was "
                    "changed."), "error")
    return redirect(url_for("coach.mine"))


# --- the invitation -------------------------------------------------------------------------

@bp.route("/coach/inbjudan/<token>")
def follow_invitation(token: str):
    """The mailed link lands here; the token moves into the session and leaves the URL."""
    session[_INVITE_KEY] = token if len(token) <= 100 else ""
    return redirect(url_for("coach.invitation"))


def _invited_account_key() -> str:
    """The login page's per-account key for the invited address: failed passwords here and
    there count towards the same limit."""
    check = services.check_invitation(session.get(_INVITE_KEY))
    email = check.link.coach_email.lower() if check.link else ""
    return "acct:" + hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]


@bp.route("/coach/inbjudan", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], key_func=client_ip,
               methods=["POST"], deduct_when=_not_redirected, scope="login-ip")
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
               key_func=_invited_account_key, methods=["POST"], deduct_when=_not_redirected,
               scope="login-account")
def invitation():
    check = services.check_invitation(session.get(_INVITE_KEY))
    if check.problem is not None:
        session.pop(_INVITE_KEY, None)
        status = 404 if check.link is None else 410
        return render_template("coach/invitation_problem.html",
                               problem=check.problem.value), status
    link = check.link
    inviter = services.inviting_user(link)
    if current_user.is_authenticated:
        return _accept_logged_in(link, inviter)
    account = auth_services.find_user_by_email(link.coach_email)
    if account is None:
        return _accept_new_account(link, inviter)
    if account.role != Role.COACH or not account.is_active:
        return _refuse("not_coach_account")
    return _accept_with_login(link, inviter)


def _refuse(reason: str):
    """Refused with an explanation; nothing changes and the invitation keeps working."""
    return render_template("coach/invitation_refused.html", reason=reason), 403


def _accept_page(link: CoachLink, inviter: User, mode: str, form):
    organisation = services.organisations_by_id([link.organisation_id]).get(
        link.organisation_id)
    return render_template("coach/invitation.html", link=link, inviter=inviter, mode=mode,
                           form=form, organisation=organisation)


def _accept_logged_in(link: CoachLink, inviter: User):
    if current_user.role != Role.COACH:
        return _refuse("not_coach_session")
    if current_user.email.lower() != link.coach_email.lower():
        return _refuse("other_address")
    form = ButtonForm()
    if form.validate_on_submit():
        services.accept_invitation(link, current_user._get_current_object())
        db.session.commit()
        session.pop(_INVITE_KEY, None)
        return _accepted(inviter)
    return _accept_page(link, inviter, "logged_in", form)


def _accept_new_account(link: CoachLink, inviter: User):
    form = NewCoachAccountForm(data={"name": link.coach_name})
    if form.validate_on_submit():
        coach = services.create_coach_account(link, form.name.data, form.password.data,
                                              str(get_locale()), POLICY_VERSION)
        services.accept_invitation(link, coach)
        _log_in(coach)
        return _accepted(inviter)
    return _accept_page(link, inviter, "new", form)


def _accept_with_login(link: CoachLink, inviter: User):
    form = CoachLoginForm()
    if form.validate_on_submit():
        result, coach = auth_services.authenticate(link.coach_email, form.password.data)
        if result in (LoginResult.OK, LoginResult.UNVERIFIED) and coach is not None:
            services.accept_invitation(link, coach)
            _log_in(coach)
            return _accepted(inviter)
        db.session.commit()  # keep the audit record of the failed attempt
        form.password.errors.append(_("The password is wrong."))
    return _accept_page(link, inviter, "login", form)


def _log_in(coach: User) -> None:
    """A new session for the coach (nothing from before carries over), committed."""
    session.clear()
    auth_services.start_session(coach)
    db.session.commit()
    login_user(coach)
    mark_authenticated()


def _accepted(inviter: User):
    flash(_("You have accepted the invitation. You can now read the texts %(name)s shares "
            "with you.", name=inviter.name), "success")
    return redirect(url_for("coach.user_texts", user_id=inviter.id))


# --- the coach area -------------------------------------------------------------------------

def _refused_for_coach(user_id: int):
    """No active link: 'access has ended' if there was one, else 404 (nothing to confirm)."""
    if services.had_link(current_user.id, user_id):
        return render_template("coach/access_ended.html"), 403
    abort(404)


@bp.route("/coach/")
@role_required(Role.COACH)
def index():
    rows = services.users_for_coach(current_user.id)
    counts = services.shared_text_counts([user.id for _, user in rows])
    return render_template("coach/index.html", rows=rows, counts=counts)


@bp.route("/coach/anvandare/<int:user_id>")
@role_required(Role.COACH)
def user_texts(user_id: int):
    link = services.link_for_coach(current_user.id, user_id)
    if link is None:
        return _refused_for_coach(user_id)
    return render_template("coach/user.html", link=link, person=db.session.get(User, user_id),
                           texts=services.shared_texts(user_id))


@bp.route("/coach/anvandare/<int:user_id>/texter/<int:text_id>")
@role_required(Role.COACH)
def read_text(user_id: int, text_id: int):
    link = services.link_for_coach(current_user.id, user_id)
    if link is None:
        return _refused_for_coach(user_id)
    text = services.shared_text(user_id, text_id)
    if text is None:
        abort(404)
    services.record_read(link, text)
    db.session.commit()
    return render_template("coach/text.html", link=link, person=db.session.get(User, user_id),
                           text=text)

