"""Public pages and the language switch."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request
from flask_login import current_user

from portal.db import db
from portal.forms import ButtonForm
from portal.security import safe_next

bp = Blueprint("pages", __name__)


@bp.route("/")
def home():
    return render_template("pages/home.html")


@bp.route("/integritetspolicy")
def privacy():
    return render_template("pages/privacy.html")


@bp.route("/cookies")
def cookies():
    return render_template("pages/cookies.html")


@bp.route("/tillganglighet")
def accessibility():
    return render_template("pages/accessibility.html")


@bp.route("/kontakt")
def contact():
    return render_template("pages/contact.html", dpo_email=current_app.config["DPO_EMAIL"])


@bp.route("/sprak", methods=["POST"])
def set_language():
    """Switch language: stored on the account, else in a necessary cookie for one year."""
    lang = request.form.get("lang")
    target = safe_next(request.form.get("next"), default="pages.home")
    response = redirect(target)
    if not ButtonForm().validate_on_submit() or lang not in current_app.config["LANGUAGES"]:
        return response
    if current_user.is_authenticated:
        current_user.locale = lang
        db.session.commit()
    response.set_cookie("lang", lang, max_age=365 * 86400, httponly=True, samesite="Lax",
                        secure=current_app.config["LANG_COOKIE_SECURE"])
    return response
