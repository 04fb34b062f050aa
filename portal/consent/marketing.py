"""Marketing switches, one-click unsubscribe and the newsletter audience."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import AnyOf

from portal.auth.models import Role
from portal.consent import marketing_services as services
from portal.consent.models import MARKETING_PURPOSES, ConsentSource, Purpose
from portal.db import db
from portal.extensions import csrf
from portal.forms import ButtonForm
from portal.i18n import lazy_gettext as _l
from portal.security import role_required

bp = Blueprint("marketing", __name__)

PURPOSE_LABELS = {Purpose.NEWSLETTER: _l("Newsletter"), Purpose.OFFERS: _l("Offers")}
SOURCE_LABELS = {
    ConsentSource.REGISTRATION: _l("When you registered"),
    ConsentSource.SETTINGS: _l("In the privacy portal"),
    ConsentSource.UNSUBSCRIBE_LINK: _l("With the unsubscribe link in a mail"),
}


class ChoiceForm(FlaskForm):
    """One switch: the hidden value is the new state (1 = send to me, 0 = stop)."""

    granted = HiddenField(validators=[AnyOf(("0", "1"))])


@bp.route("/mina-uppgifter/marknadsforing")
@role_required(Role.USER)
def preferences():
    return render_template(
        "consent/marketing.html", purposes=MARKETING_PURPOSES, labels=PURPOSE_LABELS,
        source_labels=SOURCE_LABELS, state=services.marketing_state(current_user.id),
        events=services.marketing_history(current_user.id), form=ChoiceForm(formdata=None))


@bp.route("/mina-uppgifter/marknadsforing/<purpose>", methods=["POST"], endpoint="set")
@role_required(Role.USER)
def set_choice(purpose: str):
    chosen = services.marketing_purpose(purpose)
    if chosen is None:
        abort(404)
    form = ChoiceForm()
    if not form.validate_on_submit():
        abort(400)
    granted = form.granted.data == "1"
    services.set_marketing(current_user.id, chosen, granted)
    db.session.commit()
    flash(_confirmation(chosen, granted), "success")
    return redirect(url_for("marketing.preferences"))


def _confirmation(purpose: Purpose, granted: bool) -> str:
    if purpose == Purpose.NEWSLETTER:
        return (_("Done. We will send you the newsletter.") if granted
                else _("Done. We will not send you the newsletter any more."))
    return (_("Done. We will send you our offers.") if granted
            else _("Done. We will not send you any more offers."))


@bp.route("/avregistrera/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):
    """Stop one mailing without logging in. GET only shows the button (mail scanners
    prefetch links); POST does it.

    Exempt from CSRF on purpose: mail programs send the RFC 8058 one-click POST
    (`List-Unsubscribe=One-Click`) with no session, cookie or CSRF token. The signed token
    in the URL is the proof (it names the user and the mailing and cannot be forged without
    SECRET_KEY), and the action can only reduce what we do with the user's data, so a forged
    cross-site request could at worst stop a mailing the user would have to turn on again.
    """
    found = services.read_unsubscribe_token(token)
    if found is None:
        abort(404)
    user_id, purpose = found
    if request.method == "GET":
        return render_template("consent/unsubscribe.html", purpose=purpose, form=ButtonForm())
    services.unsubscribe(user_id, purpose)
    db.session.commit()
    return render_template("consent/unsubscribe_done.html", purpose=purpose)
