"""The account overview: who you are logged in as, and the security controls."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import current_user, login_required

from portal.audit import AuditEvent
from portal.db import db
from portal.forms import ButtonForm

bp = Blueprint("account", __name__, url_prefix="/konto")

LOGIN_ACTIONS = ("login.succeeded", "login.failed", "logout", "sessions.ended", "password.set")


@bp.route("/")
@login_required
def overview():
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.subject_id == current_user.id, AuditEvent.action.in_(LOGIN_ACTIONS))
        .order_by(AuditEvent.id.desc()).limit(10)
    ).all()
    return render_template("account/overview.html", events=events,
                           session_count=len(current_user.sessions), button=ButtonForm())
