"""Requesting, following and downloading exports (under /mina-uppgifter/export)."""
from __future__ import annotations

from flask import (Blueprint, Response, abort, flash, jsonify, redirect, render_template,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user

from portal.auth.models import Role
from portal.db import db
from portal.exports import services
from portal.exports.document import reference
from portal.exports.labels import when_long
from portal.exports.models import ExportStatus
from portal.forms import ButtonForm
from portal.security import recent_auth_required, role_required

bp = Blueprint("exports", __name__, url_prefix="/mina-uppgifter/export")


def refusal_message(allowance: services.Allowance) -> str:
    if allowance.reason == "in_progress":
        return _("You already have an export in progress. Wait until it is ready before you "
                 "ask for a new one.")
    return _("You can ask for at most %(max)d exports in 24 hours. You can ask for a new one "
             "from %(when)s.", max=services.MAX_PER_WINDOW,
             when=when_long(allowance.next_at))


def _index_page(error: str | None = None, status: int = 200):
    user_id = current_user.id
    exports = services.list_exports(user_id)
    return render_template(
        "exports/index.html", exports=exports, error=error, button=ButtonForm(),
        allowance=services.allowance(user_id), refusal_message=refusal_message,
        export_status_labels=services.STATUS_LABELS, progress_view=services.progress_view,
        downloadable=services.is_downloadable, reference=reference, when_long=when_long,
        in_progress=any(e.status in services.IN_PROGRESS for e in exports),
        max_per_window=services.MAX_PER_WINDOW, ExportStatus=ExportStatus), status


def _own_export_or_404(export_id: int):
    export = services.get_own_export(current_user.id, export_id)
    if export is None:
        abort(404)
    return export


@bp.route("", methods=["GET"])
@role_required(Role.USER)
def index():
    return _index_page()


@bp.route("", methods=["POST"])
@role_required(Role.USER)
def request_export():
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.request_export(current_user._get_current_object())
    except services.ExportRefused as refused:
        db.session.rollback()
        return _index_page(refusal_message(refused.allowance), 409)
    db.session.commit()
    flash(_("Your export is queued. We will e-mail you when it is ready."), "success")
    return redirect(url_for("exports.index"))


@bp.route("/<int:export_id>/forsok-igen", methods=["POST"])
@role_required(Role.USER)
def retry(export_id: int):
    export = _own_export_or_404(export_id)
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    if export.status != ExportStatus.FAILED:
        return _index_page(_("That export cannot be tried again. Ask for a new export "
                             "instead."), 409)
    try:
        services.retry_export(current_user._get_current_object(), export)
    except services.ExportRefused as refused:
        db.session.rollback()
        return _index_page(refusal_message(refused.allowance), 409)
    db.session.commit()
    flash(_("We are trying again. Your export is queued."), "success")
    return redirect(url_for("exports.index"))


@bp.route("/<int:export_id>/status")
@role_required(Role.USER)
def status(export_id: int):
    view = services.progress_view(_own_export_or_404(export_id))
    view["progress_text"] = f"{view['progress']}\u00a0%"
    response = jsonify(view)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:export_id>/ladda-ner")
@role_required(Role.USER)
@recent_auth_required
def download(export_id: int):
    user = current_user._get_current_object()
    export = services.get_own_export(user.id, export_id)
    if export is None:
        services.record_denied_download(user, export_id)
        db.session.commit()
        abort(404)
    if not services.is_downloadable(export):
        gone = export.status in (ExportStatus.EXPIRED, ExportStatus.VOIDED) or (
            export.status == ExportStatus.READY)  # ready but past its time: expiring now
        return render_template("exports/unavailable.html", export=export,
                               reference=reference(export), gone=gone), 410 if gone else 409
    data = services.open_download(user, export)
    db.session.commit()
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = \
        f'attachment; filename="{services.download_name(export)}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Length"] = str(len(data))
    return response
