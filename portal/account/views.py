"""The user's own area: account overview, "Mina uppgifter", corrections, rights."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.account import services
from portal.account.forms import EmailChangeForm, ProfileForm
from portal.auth.models import Role
from portal.db import db
from portal.forms import ButtonForm
from portal.processing import BY_KEY, REGISTER
from portal.security import recent_auth_required, role_required
from portal.validation import format_org_number

bp = Blueprint("account", __name__)



@bp.route("/konto/")
@login_required
def overview():
    return render_template("account/overview.html",
                           logins=services.login_history(current_user.id, limit=5),
                           session_count=services.session_count(current_user.id),
                           button=ButtonForm())


@bp.route("/mina-uppgifter")
@role_required(Role.USER)
def my_data():
    data = services.gather_my_data(current_user._get_current_object())
    return render_template("account/my_data.html", data=data, register=REGISTER,
                           category=BY_KEY)


@bp.route("/mina-uppgifter/andra", methods=["GET", "POST"])
@role_required(Role.USER)
def edit_profile():
    user = current_user._get_current_object()
    form = ProfileForm(obj=user)
    if not form.is_submitted():
        form.org_number.data = format_org_number(user.org_number)
    if form.validate_on_submit():
        changed = services.correct_profile(user, {name: form[name].data
                                                  for name in services.PROFILE_FIELDS})
        db.session.commit()
        flash(_("Your corrections are saved.") if changed else _("Nothing was changed."),
              "success")
        return redirect(url_for("account.my_data") + "#profile")
    return render_template("account/edit_profile.html", form=form)


@bp.route("/mina-uppgifter/e-post", methods=["GET", "POST"])
@role_required(Role.USER, Role.COACH, Role.DPO)
@recent_auth_required
def change_email():
    form = EmailChangeForm()
    if form.validate_on_submit():
        if form.email.data == current_user.email:
            form.email.errors.append(_("That is already your e-mail address."))
        else:
            services.request_email_change(current_user._get_current_object(), form.email.data)
            db.session.commit()
            return render_template("account/email_change_sent.html")
    return render_template("account/change_email.html", form=form)


@bp.route("/mina-uppgifter/inloggningar")
@login_required
def logins():
    return render_template("account/logins.html",
                           logins=services.login_history(current_user.id, limit=20))


@bp.route("/mina-uppgifter/logg")
@login_required
def activity():
    return render_template("account/activity.html",
                           events=services.activity_log(current_user.id, limit=100))


@bp.route("/mina-rattigheter")
def rights():
    return render_template("account/rights.html")
