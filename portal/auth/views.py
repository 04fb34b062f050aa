"""Registration, verification, login, logout, passwords. Thin: validate, call, commit."""
from __future__ import annotations

import hashlib

from flask import (Blueprint, current_app, flash, redirect, render_template, request,
                   session, url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal.auth import services
from portal.auth.forms import (ChangePasswordForm, EmailOnlyForm, LoginForm, ReauthForm,
                               RegisterForm, SetPasswordForm)
from portal.auth.models import AccessSource, Role, TokenPurpose
from portal.auth.passwords import verify_password
from portal.auth.services import LoginResult
from portal.db import db
from portal.extensions import client_ip, limiter
from portal.forms import ButtonForm
from portal.requests import totp
from portal.security import mark_authenticated, safe_next

bp = Blueprint("auth", __name__)
_LINK_KEY = "pending_link"


def home_for(user) -> str:
    """Where a user lands after login: their data for users, the account page otherwise."""
    landing = {Role.USER: "account.my_data", Role.COACH: "coach.index"}
    return url_for(landing.get(user.role, "account.overview"))


def _login_account_key() -> str:
    """Rate-limit key per account: a digest of the address, never the address itself."""
    email = (request.form.get("email") or "").strip().lower()[:254]
    return "acct:" + hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]


def _failed_attempt(response) -> bool:
    """Only failed logins count towards the limits; a success redirects."""
    return response.status_code != 302


@bp.route("/registrera", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = RegisterForm()
    if form.validate_on_submit():
        services.register(form.name.data, form.email.data, form.password.data,
                          AccessSource(form.access_source.data), str(get_locale()),
                          newsletter=not form.no_newsletter.data, offers=not form.no_offers.data)
        db.session.commit()
        return redirect(url_for("auth.check_email"))
    return render_template("auth/register.html", form=form)


@bp.route("/registrera/kolla-e-posten")
def check_email():
    return render_template("auth/check_email.html", form=EmailOnlyForm())


@bp.route("/registrera/skicka-igen", methods=["POST"])
@limiter.limit("5 per hour", key_func=client_ip)
def resend_verification():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        user = services.find_user_by_email(form.email.data)
        if user is not None and not user.is_verified:
            services.send_verification(user)
            db.session.commit()
        flash(_("If there is an unconfirmed account for that address, we have sent a new link."),
              "success")
        return redirect(url_for("auth.check_email"))
    return render_template("auth/check_email.html", form=form), 400


@bp.route("/l/<token>")
def follow_link(token: str):
    """Every mailed link lands here; the token leaves the URL at once."""
    check = services.check_token(token)
    if check.token is not None and check.token.purpose == TokenPurpose.KEEP_ACCOUNT:
        from portal.retention.views import start_keep_account

        return start_keep_account(token, check)
    if check.problem is not None:
        return _link_problem(check)
    if check.token.purpose == TokenPurpose.VERIFY_EMAIL:
        services.verify_email(check.token)
        db.session.commit()
        flash(_("Your e-mail address is confirmed. You can now log in."), "success")
        return redirect(url_for("auth.login"))
    if check.token.purpose == TokenPurpose.CHANGE_EMAIL:
        from portal.account.services import confirm_email_change

        changed = confirm_email_change(check.token)
        db.session.commit()
        if changed:
            flash(_("Your new e-mail address is confirmed and now in use."), "success")
        else:
            flash(_("The address could not be changed: it is already used by another "
                    "account. Nothing was changed."), "error")
        target = "account.my_data" if current_user.is_authenticated else "auth.login"
        return redirect(url_for(target))
    session[_LINK_KEY] = token
    return redirect(url_for("auth.set_password"))


def _link_problem(check: services.TokenCheck):
    purpose = check.token.purpose.value if check.token else None
    verified = bool(check.token and check.token.user.is_verified)
    return render_template("auth/link_problem.html", problem=check.problem.value,
                           purpose=purpose, verified=verified), 410 if check.token else 404


@bp.route("/nytt-losenord", methods=["GET", "POST"])
def set_password():
    raw = session.get(_LINK_KEY)
    check = services.check_token(raw)
    if check.problem is not None or check.token.purpose not in (TokenPurpose.RESET_PASSWORD,
                                                                TokenPurpose.SET_PASSWORD):
        session.pop(_LINK_KEY, None)
        if raw is None:
            return redirect(url_for("auth.forgot_password"))
        return _link_problem(check)
    form = SetPasswordForm()
    if form.validate_on_submit():
        services.set_password_with_token(check.token, form.password.data)
        db.session.commit()
        session.pop(_LINK_KEY, None)
        if current_user.is_authenticated:
            logout_user()
        flash(_("Your new password is saved. Log in with it."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/set_password.html", form=form,
                           purpose=check.token.purpose.value), 400 if form.errors else 200


@bp.route("/logga-in", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], key_func=client_ip,
               methods=["POST"], deduct_when=_failed_attempt, scope="login-ip")
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], key_func=_login_account_key,
               methods=["POST"], deduct_when=_failed_attempt, scope="login-account")
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        result, user = services.authenticate(form.email.data, form.password.data)
        if result is LoginResult.OK:
            next_url = request.args.get("next")
            if user.role == Role.DPO:  # the second factor comes first; no session yet
                from portal.requests.dpo_views import start_totp_step

                db.session.commit()
                return start_totp_step(user, next_url)
            session.clear()  # a new session at login: nothing from before carries over
            services.start_session(user)
            db.session.commit()
            login_user(user)
            mark_authenticated()
            return redirect(safe_next(next_url, default=None) or home_for(user))
        db.session.commit()  # keep the audit record of the failed attempt
        if result is LoginResult.UNVERIFIED:
            return render_template("auth/login.html", form=form, unverified=True,
                                   resend_form=EmailOnlyForm(email=form.email.data)), 200
        form.form_errors.append(_("The e-mail address or the password is wrong."))
    return render_template("auth/login.html", form=form, unverified=False)


@bp.route("/logga-ut", methods=["POST"])
@login_required
def logout():
    if ButtonForm().validate_on_submit():
        services.end_session(current_user)
        db.session.commit()
        logout_user()
        session.clear()
        flash(_("You are logged out."), "success")
    return redirect(url_for("pages.home"))


@bp.route("/logga-ut-overallt", methods=["POST"])
@login_required
def logout_everywhere():
    if ButtonForm().validate_on_submit():
        count = services.end_all_sessions(current_user, reason="logout_everywhere")
        db.session.commit()
        logout_user()
        session.clear()
        flash(_("You are logged out on all devices (%(count)d sessions ended).", count=count),
              "success")
    return redirect(url_for("auth.login"))


@bp.route("/glomt-losenord", methods=["GET", "POST"])
@limiter.limit("10 per hour", key_func=client_ip, methods=["POST"])
def forgot_password():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        db.session.commit()
        return render_template("auth/reset_sent.html")
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/konto/losenord", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not verify_password(current_user.password_hash, form.current_password.data):
            form.current_password.errors.append(_("The current password is wrong."))
        else:
            user = current_user._get_current_object()
            services.change_password(user, form.password.data)
            totp_proof = session.get(totp.PROOF_KEY)
            session.clear()
            services.start_session(user)
            db.session.commit()
            login_user(user)
            mark_authenticated()
            if totp_proof is not None:  # a DPO stays inside the console after a new password
                session[totp.PROOF_KEY] = totp_proof
            flash(_("Your password is changed. You have been logged out on all other devices."),
                  "success")
            return redirect(url_for("account.overview"))
    return render_template("auth/change_password.html", form=form)


@bp.route("/bekrafta-losenord", methods=["GET", "POST"])
@login_required
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
               key_func=lambda: f"reauth:{current_user.id}", methods=["POST"],
               deduct_when=_failed_attempt, scope="reauth")
def reauthenticate():
    form = ReauthForm()
    next_url = safe_next(request.args.get("next"))
    if form.validate_on_submit():
        if verify_password(current_user.password_hash, form.password.data):
            mark_authenticated()
            return redirect(next_url)
        form.password.errors.append(_("The password is wrong."))
    return render_template("auth/reauthenticate.html", form=form)
