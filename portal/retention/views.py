"""Retention pages: "keep my account" (from the inactivity warning) and the DPO's erasures."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import format_date

from portal.auth.models import Role, TokenPurpose
from portal.auth.services import TokenCheck, check_token
from portal.db import db
from portal.forms import ButtonForm
from portal.i18n import lazy_gettext as _l
from portal.retention import services
from portal.retention.models import ErasureReason, ErasureStep
from portal.security import role_required

bp = Blueprint("retention", __name__)
_KEEP_KEY = "pending_keep_link"
_KEPT_KEY = "account_kept"
PER_PAGE = 50

STEP_LABELS = {
    ErasureStep.APPROVED: _l("Approved, waiting to be pseudonymised"),
    ErasureStep.PSEUDONYMISED: _l("Pseudonymised, invoicing open"),
    ErasureStep.INVOICING_CLOSED: _l("Invoicing closed, waiting for deletion"),
    ErasureStep.DELETED: _l("Deleted"),
}
REASON_LABELS = {
    ErasureReason.REQUEST: _l("Erasure request"),
    ErasureReason.INACTIVITY: _l("Six months without activity"),
    ErasureReason.ADMIN: _l("Operator's command"),
}


def start_keep_account(raw: str, check: TokenCheck):
    """From /l/<token>: the token leaves the URL at once and waits in the session until the
    person confirms with the button (a mail scanner following the link keeps nothing)."""
    if check.problem is not None:
        return _keep_problem(check.problem.value)
    session[_KEEP_KEY] = raw
    return redirect(url_for("retention.keep_account"))


def _keep_problem(problem: str):
    return render_template("retention/keep_problem.html", problem=problem), \
        404 if problem == "unknown" else 410


@bp.route("/behall-konto", methods=["GET", "POST"])
def keep_account():
    raw = session.get(_KEEP_KEY)
    if raw is None:
        return redirect(url_for("pages.home"))
    check = check_token(raw, TokenPurpose.KEEP_ACCOUNT)
    if check.problem is not None:
        session.pop(_KEEP_KEY, None)
        return _keep_problem(check.problem.value)
    form = ButtonForm()
    if form.validate_on_submit():
        kept = services.keep_account(check.token)
        db.session.commit()
        session.pop(_KEEP_KEY, None)
        if not kept:
            return _keep_problem("too_late")
        session[_KEPT_KEY] = True
        return redirect(url_for("retention.account_kept"))
    return render_template("retention/keep_account.html", form=form, format_date=format_date,
                           delete_at=check.token.expires_at), 400 if form.errors else 200


@bp.route("/behall-konto/klart")
def account_kept():
    if not session.pop(_KEPT_KEY, False):
        return redirect(url_for("pages.home"))
    return render_template("retention/account_kept.html")


@bp.route("/dso/raderingar")
@role_required(Role.DPO)
def erasures():
    page = request.args.get("sida", 1, type=int)
    page = page if page and 1 <= page <= 100_000 else 1
    rows, total = services.list_erasure_cases(page, PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    return render_template("retention/erasures.html", rows=rows, total=total, page=page,
                           pages=pages, counts=services.erasure_counts(),
                           steps=list(ErasureStep), step_labels=STEP_LABELS,
                           reason_labels=REASON_LABELS)
