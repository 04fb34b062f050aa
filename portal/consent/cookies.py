"""Cookie banner, cookie settings and the consented page statistics.

The visitor's choice lives in one strictly necessary cookie, `cookie_consent`, holding a
versioned value such as ``v1.f0.s1.m0`` (functional, statistics, marketing). A missing,
tampered or outdated value counts as "not chosen yet": the banner is shown and nothing
that needs consent happens. Logged-in visitors' choices are also kept as consent events.
"""
from __future__ import annotations

import re
from datetime import timedelta

from flask import (Blueprint, abort, current_app, flash, has_request_context, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField

from portal.consent import stats
from portal.consent.models import COOKIE_PURPOSES, ConsentSource, Purpose
from portal.consent.services import record_consent
from portal.db import db
from portal.forms import ButtonForm
from portal.i18n import lazy_gettext as _l
from portal.security import safe_next

bp = Blueprint("cookies", __name__)

COOKIE_NAME = "cookie_consent"
COOKIE_LIFETIME = timedelta(days=180)
_VERSION = "v1"  # bump when the categories change: every earlier choice is then asked again
_LETTERS = {Purpose.COOKIES_FUNCTIONAL: "f", Purpose.COOKIES_STATISTICS: "s",
            Purpose.COOKIES_MARKETING: "m"}
_VALUE_RE = re.compile(r"v1\.f([01])\.s([01])\.m([01])")
_PRESETS = {"all": True, "necessary": False}
_MAX_NEXT_LENGTH = 1000


class CookieSettingsForm(FlaskForm):
    """The three optional categories; necessary cookies are not a choice."""

    functional = BooleanField(_l("Allow functional cookies"))
    statistics = BooleanField(_l("Allow statistics"))
    marketing = BooleanField(_l("Allow marketing cookies"))

    def choice(self) -> dict[Purpose, bool]:
        return {Purpose.COOKIES_FUNCTIONAL: bool(self.functional.data),
                Purpose.COOKIES_STATISTICS: bool(self.statistics.data),
                Purpose.COOKIES_MARKETING: bool(self.marketing.data)}


def encode_choice(choice: dict[Purpose, bool]) -> str:
    """The cookie value for a choice, e.g. ``v1.f0.s1.m0``."""
    parts = [f"{_LETTERS[p]}{int(bool(choice.get(p)))}" for p in COOKIE_PURPOSES]
    return ".".join([_VERSION, *parts])


def parse_choice(raw: str | None) -> dict[Purpose, bool] | None:
    """The choice in a cookie value; None for anything but an exact, current-version value."""
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    match = _VALUE_RE.fullmatch(raw)
    if match is None:
        return None
    return {p: flag == "1" for p, flag in zip(COOKIE_PURPOSES, match.groups(), strict=True)}


def current_choice() -> dict[Purpose, bool] | None:
    """This visitor's cookie choice; None when not chosen yet (then the banner is shown)."""
    if not has_request_context():
        return None
    return parse_choice(request.cookies.get(COOKIE_NAME))


def preset_choice(granted: bool) -> dict[Purpose, bool]:
    """Every optional category on ("Accept all") or off ("Necessary only")."""
    return {p: granted for p in COOKIE_PURPOSES}


def log_choice(user_id: int, choice: dict[Purpose, bool], source: ConsentSource) -> int:
    """Record a logged-in user's cookie choice as consent events; returns how many changed."""
    changed = 0
    for purpose in COOKIE_PURPOSES:
        if record_consent(user_id, purpose, choice[purpose], source, actor_id=user_id):
            changed += 1
    return changed


def set_choice_cookie(response: Response, choice: dict[Purpose, bool]) -> Response:
    """Remember the choice in the strictly necessary cookie (180 days)."""
    response.set_cookie(COOKIE_NAME, encode_choice(choice),
                        max_age=int(COOKIE_LIFETIME.total_seconds()), path="/", httponly=True,
                        samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


@bp.app_context_processor
def _cookie_context() -> dict:
    """`cookie_choice` in every template: the choice, or None before one is made."""
    if not has_request_context():  # mails and PDFs rendered by the worker
        return {}
    return {"cookie_choice": current_choice()}


bp.after_app_request(stats.record_page_view)


@bp.route("/kakor/val", methods=["POST"])
def choose():
    """The banner's two buttons: a plain form, so it works without JavaScript."""
    raw_next = request.form.get("next", "")
    target = safe_next(raw_next if len(raw_next) <= _MAX_NEXT_LENGTH else None,
                       default="pages.home")
    preset = _PRESETS.get(request.form.get("choice", ""))
    if not ButtonForm().validate_on_submit() or preset is None:
        abort(400)
    choice = preset_choice(preset)
    if current_user.is_authenticated:
        log_choice(current_user.id, choice, ConsentSource.COOKIE_BANNER)
        db.session.commit()
    response = set_choice_cookie(redirect(target), choice)
    flash(_("Your choice about cookies is saved."), "success")
    return response


@bp.route("/kakor/installningar", methods=["GET", "POST"])
def settings():
    """Choose category by category; "Accept all" and "Necessary only" are offered here too."""
    chosen = current_choice()
    defaults = chosen or preset_choice(False)
    form = CookieSettingsForm(functional=defaults[Purpose.COOKIES_FUNCTIONAL],
                              statistics=defaults[Purpose.COOKIES_STATISTICS],
                              marketing=defaults[Purpose.COOKIES_MARKETING])
    if request.method == "POST":
        action = request.form.get("choice", "save")
        if action != "save" and action not in _PRESETS:
            abort(400)
        if form.validate_on_submit():
            choice = form.choice() if action == "save" else preset_choice(_PRESETS[action])
            if current_user.is_authenticated:
                log_choice(current_user.id, choice, ConsentSource.SETTINGS)
                db.session.commit()
            response = set_choice_cookie(redirect(url_for("cookies.settings")), choice)
            flash(_("Your cookie settings are saved."), "success")
            return response
    return render_template("consent/cookie_settings.html", form=form, chosen=chosen,
                           lifetime_days=COOKIE_LIFETIME.days,
                           cookie_name=COOKIE_NAME), 400 if form.errors else 200
