"""Rights requests: the user's side (file, track, withdraw) under /mina-rattigheter/begaran."""
from __future__ import annotations

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request,
                   url_for)
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user

from portal.auth.models import Role
from portal.auth.passwords import verify_password
from portal.db import db
from portal.forms import ButtonForm
from portal.i18n import lazy_gettext as _l
from portal.requests import services
from portal.requests.forms import (ACCEPT, CompletionForm, DescribedRequestForm,
                                   ErasureRequestForm)
from portal.requests.models import RequestKind, RequestStatus
from portal.requests.uploads import MAX_BYTES, UploadRejected, process_id_upload
from portal.security import role_required

bp = Blueprint("requests", __name__, url_prefix="/mina-rattigheter/begaran")

# URL slugs (Swedish, as users see them) for the kinds with a description field.
DESCRIBED_KINDS = {
    "begransning": RequestKind.RESTRICTION,
    "rattelse": RequestKind.RECTIFICATION,
    "invandning": RequestKind.OBJECTION,
}
SLUGS = {kind: slug for slug, kind in DESCRIBED_KINDS.items()}
HEADINGS = {
    RequestKind.RESTRICTION: _l("Ask us to restrict the use of your data"),
    RequestKind.RECTIFICATION: _l("Ask us to correct your data"),
    RequestKind.OBJECTION: _l("Object to our use of your data"),
}


def _context(**extra) -> dict:
    return {"kind_labels": services.KIND_LABELS, "status_labels": services.STATUS_LABELS,
            "event_labels": services.EVENT_LABELS, "format_date": format_date,
            "RequestStatus": RequestStatus, "RequestKind": RequestKind,
            "undecided": services.UNDECIDED_STATUSES, "slugs": SLUGS, **extra}


def _own_request_or_404(request_id: int):
    req = services.get_own_request(current_user.id, request_id)
    if req is None:
        abort(404)
    return req


@bp.route("", methods=["GET"])
@role_required(Role.USER)
def index():
    return render_template("requests/index.html", button=ButtonForm(),
                           requests=services.list_requests(current_user.id), **_context())


def _chosen(field):
    """The uploaded file of a file field, or None if none was chosen."""
    file = field.data if field is not None else None
    return file if file is not None and getattr(file, "filename", None) else None


def _process(field):
    """Process the field's file; None (with the error on the field) if refused."""
    file = _chosen(field)
    try:
        return process_id_upload(file.stream.read(MAX_BYTES + 1), file.filename)
    except UploadRejected as rejected:
        field.errors.append(str(rejected.message))
        return None


def _check_signed_form(form, kind: RequestKind):
    """Checks beyond the fields' own validators; returns (ID copy, signed form or None), or
    None with the errors on the form."""
    user = current_user
    form.validate_on_submit()
    if form.csrf_token.errors:
        abort(400)
    signed_form_field = getattr(form, "signed_form", None)
    by_hand = _chosen(signed_form_field) is not None
    if by_hand:
        # The signed form carries the signature and the declaration: typing them is optional.
        if not form.signature_name.data:
            form.signature_name.errors = []
        if not form.declaration.data:
            form.declaration.errors = []
    if form.signature_name.data and not form.signature_name.errors and not services.names_match(
            form.signature_name.data, user.name):
        form.signature_name.errors.append(_(
            "The name you typed is not the name on your account (%(name)s). Type your full "
            "name exactly as it is on your account.", name=user.name))
    if form.password.data and not verify_password(user.password_hash, form.password.data):
        form.password.errors.append(_("The password is wrong. Enter the password you log in "
                                      "with."))
    if kind == RequestKind.ERASURE and services.has_open_erasure(user.id):
        form.form_errors.append(_("You already have a request for erasure that we are "
                                  "handling. You can follow it under your requests."))
        return None
    if _chosen(form.id_copy) is None:
        form.id_copy.errors.append(_("Choose a photo or scan of your ID document."))
        id_copy = None
    else:
        id_copy = _process(form.id_copy)
    signed = _process(signed_form_field) if by_hand else None
    if any(f.errors for f in form) or form.form_errors or id_copy is None:
        return None
    return id_copy, signed


def _file(form, kind: RequestKind, template: str, **extra):
    if request.method == "POST":
        checked = _check_signed_form(form, kind)
        if checked is not None:
            id_copy, signed_form = checked
            try:
                filed = services.file_request(
                    current_user._get_current_object(), kind,
                    signature_name=form.signature_name.data or "", upload=id_copy,
                    signed_form=signed_form,
                    details=form.details.data if "details" in form else "")
            except services.RequestRefused as refused:
                db.session.rollback()
                form.form_errors.append(str(refused.message))
            else:
                db.session.commit()
                flash(_("We have received your request. Its reference is %(reference)s.",
                        reference=filed.request.reference), "success")
                return redirect(url_for("requests.show", request_id=filed.request.id))
        form.password.data = ""
        status = 400
    else:
        status = 200
    return render_template(template, form=form, kind=kind, accept=ACCEPT,
                           **_context(**extra)), status


@bp.route("/radering", methods=["GET", "POST"])
@role_required(Role.USER)
def erasure():
    form = ErasureRequestForm()
    return _file(form, RequestKind.ERASURE, "requests/erasure.html",
                 open_erasure=services.has_open_erasure(current_user.id))


@bp.route("/radering/blankett.pdf", methods=["GET"])
@role_required(Role.USER)
def erasure_form_pdf():
    pdf = services.request_form_pdf(current_user._get_current_object(), RequestKind.ERASURE)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'attachment; filename="begaran-om-radering.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<kind_slug>", methods=["GET", "POST"])
@role_required(Role.USER)
def other(kind_slug: str):
    kind = DESCRIBED_KINDS.get(kind_slug)
    if kind is None:
        abort(404)
    form = DescribedRequestForm()
    return _file(form, kind, "requests/other.html", slug=kind_slug,
                 heading=HEADINGS[kind])


@bp.route("/<int:request_id>", methods=["GET"])
@role_required(Role.USER)
def show(request_id: int):
    req = _own_request_or_404(request_id)
    return render_template("requests/show.html", req=req, button=ButtonForm(),
                           completion_form=CompletionForm(formdata=None), accept=ACCEPT,
                           events=services.events_for(req),
                           uploads=services.uploads_for(req), **_context())


@bp.route("/<int:request_id>/kvitto.pdf", methods=["GET"])
@role_required(Role.USER)
def receipt(request_id: int):
    req = _own_request_or_404(request_id)
    pdf = services.receipt_pdf(req)
    if pdf is None:
        abort(404)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{req.reference.lower()}-kvitto.pdf"')
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:request_id>/komplettera", methods=["POST"])
@role_required(Role.USER)
def complete(request_id: int):
    req = _own_request_or_404(request_id)
    form = CompletionForm()
    if form.validate_on_submit():
        if _chosen(form.id_copy) is None:
            form.id_copy.errors.append(_("Choose a photo or scan of your ID document."))
        else:
            processed = _process(form.id_copy)
            if processed is not None:
                try:
                    services.complete_request(req, current_user._get_current_object(),
                                              processed, form.note.data or "")
                except services.RequestRefused as refused:
                    db.session.rollback()
                    flash(str(refused.message), "error")
                    return redirect(url_for("requests.show", request_id=request_id))
                db.session.commit()
                flash(_("Thank you. The new copy is sent to the data protection officer."),
                      "success")
                return redirect(url_for("requests.show", request_id=request_id))
    elif form.is_submitted() and "csrf_token" in form.errors:
        abort(400)
    return render_template("requests/show.html", req=req, button=ButtonForm(),
                           completion_form=form, accept=ACCEPT, events=services.events_for(req),
                           uploads=services.uploads_for(req), **_context()), 400


@bp.route("/<int:request_id>/aterkalla", methods=["POST"])
@role_required(Role.USER)
def withdraw(request_id: int):
    req = _own_request_or_404(request_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.withdraw_request(req, current_user._get_current_object())
    except services.RequestRefused as refused:
        db.session.rollback()
        flash(str(refused.message), "error")
        return redirect(url_for("requests.show", request_id=request_id))
    db.session.commit()
    flash(_("Your request %(reference)s is withdrawn and the copy of your ID document has "
            "been deleted.", reference=req.reference), "success")
    return redirect(url_for("requests.show", request_id=request_id))
