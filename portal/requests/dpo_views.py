"""The DPO console: TOTP, queue, review, decisions, overview."""
from __future__ import annotations

from functools import wraps

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   session, url_for)
from flask_babel import format_date, format_decimal
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from portal import jobs
from portal.auth import services as auth_services
from portal.auth.models import Role, User
from portal.clock import now
from portal.db import db
from portal.extensions import client_ip, limiter
from portal.forms import ButtonForm
from portal.requests import dpo_services as services
from portal.requests import totp
from portal.requests.dpo_forms import CompletionForm, ExtendForm, RejectForm, TotpCodeForm
from portal.requests.models import RequestKind, RequestStatus, RightsRequest
from portal.retention.models import ErasureStep
from portal.security import mark_authenticated, safe_next

bp = Blueprint("dpo", __name__)

PENDING_SECONDS = 300  # the code must follow the password within 5 minutes


def dpo_required(view):
    """Logged in as DPO *with* the TOTP step done; others get 404, and a DPO session without
    the second factor is ended and sent to log in again."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if current_user.role != Role.DPO:
            abort(404)
        if session.get(totp.PROOF_KEY) != current_user.id:
            auth_services.end_session(current_user._get_current_object())
            db.session.commit()
            logout_user()
            session.clear()
            return redirect(url_for("auth.login"))
        return view(*args, **kwargs)
    return wrapped


# --- the second login step --------------------------------------------------------------------

def _pending_user() -> User | None:
    pending = session.get(totp.PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    started = pending.get("at")
    if not isinstance(started, (int, float)) or now().timestamp() - started > PENDING_SECONDS:
        return None
    user = db.session.get(User, pending.get("id"))
    if user is None or user.role != Role.DPO or not user.is_active:
        return None
    return user


def _totp_key() -> str:
    pending = session.get(totp.PENDING_KEY)
    user_id = pending.get("id") if isinstance(pending, dict) else None
    return f"totp:{user_id}"


def _failed(response) -> bool:
    return response.status_code != 302


@bp.route("/logga-in/kod", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], key_func=client_ip,
               methods=["POST"], deduct_when=_failed, scope="totp-ip")
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], key_func=_totp_key,
               methods=["POST"], deduct_when=_failed, scope="totp")
def totp_step():
    """After the password: enrol an authenticator (first time) or give a code."""
    user = _pending_user()
    if user is None:
        session.pop(totp.PENDING_KEY, None)
        session.pop(totp.ENROL_SECRET_KEY, None)
        flash(_("Log in again: the time for the code ran out."), "error")
        return redirect(url_for("auth.login"))
    form = TotpCodeForm()
    enrolling = not totp.is_enrolled(user)
    secret = None
    if enrolling:
        secret = session.get(totp.ENROL_SECRET_KEY) or totp.new_secret()
        session[totp.ENROL_SECRET_KEY] = secret
    if form.validate_on_submit():
        ok = (totp.enrol(user, secret, form.code.data) if enrolling
              else totp.check_code(user, form.code.data))
        if ok:
            next_url = session.get(totp.PENDING_KEY, {}).get("next")
            session.clear()
            auth_services.start_session(user)
            db.session.commit()
            login_user(user)
            mark_authenticated()
            session[totp.PROOF_KEY] = user.id
            return redirect(safe_next(next_url, default=None) or url_for("dpo.queue"))
        db.session.commit()  # keep the audit record of the failed attempt
        form.code.errors.append(_("The code is wrong or has already been used. Wait for a "
                                  "new code in the app and try again."))
    status = 400 if form.errors else 200
    if enrolling:
        uri = totp.provisioning_uri(user, secret)
        return render_template("dpo/totp_enrol.html", form=form, secret=secret,
                               qr=totp.qr_data_uri(uri)), status
    return render_template("dpo/totp_code.html", form=form), status


def start_totp_step(user: User, next_url: str | None):
    """Called by the login view after a correct password for a DPO: no session yet."""
    session.clear()
    session[totp.PENDING_KEY] = {"id": user.id, "at": now().timestamp(), "next": next_url}
    return redirect(url_for("dpo.totp_step"))


# --- queue ------------------------------------------------------------------------------------

def kind_labels() -> dict:
    return {RequestKind.ERASURE: _("Erasure"), RequestKind.RESTRICTION: _("Restriction"),
            RequestKind.RECTIFICATION: _("Rectification"), RequestKind.OBJECTION: _("Objection")}


def status_labels() -> dict:
    return {RequestStatus.RECEIVED: _("Received"),
            RequestStatus.NEEDS_COMPLETION: _("Waiting for completion"),
            RequestStatus.APPROVED: _("Approved"), RequestStatus.REJECTED: _("Rejected"),
            RequestStatus.WITHDRAWN: _("Withdrawn")}


@bp.route("/dso/begaranden")
@dpo_required
def queue():
    errors = []
    kind = request.args.get("typ") or None
    status = request.args.get("status") or None
    page = request.args.get("sida", "1")
    if kind is not None and kind not in {k.value for k in RequestKind}:
        errors.append(_("Choose a type from the list."))
        kind = None
    if status is not None and status not in {s.value for s in services.OPEN_STATUSES}:
        errors.append(_("Choose a status from the list."))
        status = None
    if not page.isdigit() or not 1 <= int(page) <= 100_000:
        errors.append(_("The page number must be a whole number from 1."))
        page = "1"
    result = services.list_queue(RequestKind(kind) if kind else None,
                                 RequestStatus(status) if status else None, int(page))
    return render_template("dpo/queue.html", result=result, errors=errors, kind=kind,
                           status=status, kinds=kind_labels(), statuses=status_labels(),
                           open_statuses=services.OPEN_STATUSES,
                           format_date=format_date), 400 if errors else 200


# --- review and decisions ---------------------------------------------------------------------

def _load(request_id: int) -> RightsRequest:
    req = db.session.get(RightsRequest, request_id)
    if req is None:
        abort(404)
    return req


def _render_review(req: RightsRequest, status: int = 200, **forms):
    forms.setdefault("approve_form", ButtonForm())
    forms.setdefault("reject_form", RejectForm())
    forms.setdefault("completion_form", CompletionForm())
    forms.setdefault("extend_form", ExtendForm())
    from portal.requests import deadlines

    can_extend = (req.status in services.OPEN_STATUSES
                  and deadlines.can_extend(req.received_at, now(), req.extension_months > 0))
    uploads = services.uploads_for(req)
    return render_template(
        "dpo/review.html", req=req, user=db.session.get(User, req.user_id),
        uploads=uploads, events=services.events_for(req),
        signature_ok=services.receipt_verifies(req),
        pages=services.live_page_count(req, uploads),
        is_open=req.status in services.OPEN_STATUSES, can_extend=can_extend,
        days_left=(req.due_on - deadlines.local_day(now())).days,
        kinds=kind_labels(), statuses=status_labels(), event_labels=event_labels(),
        format_date=format_date,
        decider=db.session.get(User, req.decided_by) if req.decided_by else None,
        verifier=db.session.get(User, req.id_verified_by) if req.id_verified_by else None,
        erasure=_erasure_of(req), **forms), status


def _erasure_of(req: RightsRequest) -> dict | None:
    """The erasure case an approved erasure request started: its step and its dates."""
    from portal.retention import services as retention
    from portal.retention.views import STEP_LABELS

    if req.kind != RequestKind.ERASURE or req.status != RequestStatus.APPROVED:
        return None
    case = retention.case_for_user(req.user_id)
    if case is None:
        return None
    return {"case": case, "step_label": STEP_LABELS[case.step],
            "queued": case.step == ErasureStep.APPROVED,
            "invoicing_closes": case.invoicing_closed_at
            or case.approved_at + retention.INVOICING_DAYS,
            "deleted": case.deleted_at or case.approved_at + retention.DELETION_DAYS}


def event_labels() -> dict:
    return {"received": _("Request received"), "approved": _("Approved"),
            "rejected": _("Rejected"), "completion_requested": _("Completion requested"),
            "extended": _("Deadline extended"), "withdrawn": _("Withdrawn by the person"),
            "completed": _("Completed by the person")}


@bp.route("/dso/begaranden/<int:request_id>")
@dpo_required
def review(request_id: int):
    return _render_review(_load(request_id))


@bp.route("/dso/begaranden/<int:request_id>/id/<int:page>")
@dpo_required
def id_image(request_id: int, page: int):
    req = _load(request_id)
    if page < 1:
        abort(404)
    image = services.id_page(req, page, current_user._get_current_object())
    if image is None:
        abort(404)
    db.session.commit()
    response = current_app.response_class(image, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = "inline"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _refused(req: RightsRequest, error: services.DecisionRefused):
    db.session.rollback()
    messages = {"closed": _("The request is already decided or withdrawn. Nothing was changed."),
                "too_late": _("The deadline can only be extended during the first month. "
                              "Nothing was changed."),
                "already": _("The deadline has already been extended once. Nothing was "
                             "changed."),
                "months": _("Choose 1 or 2 months."),
                "not_restricted": _("The account is not restricted by this request. Nothing "
                                    "was changed.")}
    flash(messages[error.code], "error")
    return redirect(url_for("dpo.review", request_id=req.id))


def _decision(request_id: int, form, action, flash_text: str, form_name: str):
    req = _load(request_id)
    if not form.validate_on_submit():
        if not form.errors or "csrf_token" in form.errors:
            abort(400)
        return _render_review(req, 400, **{form_name: form})
    try:
        action(req)
    except services.DecisionRefused as error:
        return _refused(req, error)
    db.session.commit()
    flash(flash_text(req) if callable(flash_text) else flash_text, "success")
    return redirect(url_for("dpo.review", request_id=req.id))


@bp.route("/dso/begaranden/<int:request_id>/bevilja", methods=["POST"])
@dpo_required
def approve(request_id: int):
    dpo = current_user._get_current_object()
    return _decision(request_id, ButtonForm(), lambda req: services.approve(req, dpo),
                     _approved_text, "approve_form")


def _approved_text(req: RightsRequest) -> str:
    """After the commit: an erasure is queued, and said so even when Redis is down (the case
    row is saved; the reconciler enqueues its step once the queue answers again)."""
    if req.kind != RequestKind.ERASURE:
        return _("The request is approved. The ID copy has been destroyed.")
    if jobs.unqueued_after_commit(db.session):
        return _("The request is approved and the ID copy destroyed. The erasure is queued: "
                 "the job queue cannot be reached just now, so it starts by itself as soon "
                 "as the queue is back. Nothing more is needed from you.")
    return _("The request is approved and the ID copy destroyed. The erasure is queued and "
             "the account is pseudonymised within a minute.")


@bp.route("/dso/begaranden/<int:request_id>/hav-begransning", methods=["POST"])
@dpo_required
def lift_restriction(request_id: int):
    dpo = current_user._get_current_object()
    return _decision(request_id, ButtonForm(),
                     lambda req: services.lift_restriction(req, dpo),
                     _("The restriction is lifted. The account is active again."),
                     "approve_form")


@bp.route("/dso/begaranden/<int:request_id>/avsla", methods=["POST"])
@dpo_required
def reject(request_id: int):
    dpo, form = current_user._get_current_object(), RejectForm()
    return _decision(request_id, form,
                     lambda req: services.reject(req, dpo, form.reason.data),
                     _("The request is rejected and the person has been told why. The ID "
                       "copy has been destroyed."), "reject_form")


@bp.route("/dso/begaranden/<int:request_id>/komplettering", methods=["POST"])
@dpo_required
def completion(request_id: int):
    dpo, form = current_user._get_current_object(), CompletionForm()
    return _decision(request_id, form,
                     lambda req: services.ask_completion(req, dpo, form.note.data),
                     _("The person has been asked to complete the request."),
                     "completion_form")


@bp.route("/dso/begaranden/<int:request_id>/forlang", methods=["POST"])
@dpo_required
def extend(request_id: int):
    dpo, form = current_user._get_current_object(), ExtendForm()
    return _decision(request_id, form,
                     lambda req: services.extend(req, dpo, int(form.months.data),
                                                 form.ext_reason.data),
                     _("The deadline is extended and the person has been told why."),
                     "extend_form")


# --- overview ---------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 640, 220, 20


def chart_bars(weeks: list) -> list[dict]:
    """Bar geometry for the server-rendered SVG chart (no script, no external library)."""
    peak = max((count for _, count in weeks), default=0) or 1
    slot = CHART_WIDTH / max(len(weeks), 1)
    plot = CHART_HEIGHT - CHART_TOP - 30
    bars = []
    for index, (monday, count) in enumerate(weeks):
        height = round(plot * count / peak, 1)
        bars.append({"x": round(index * slot + slot * 0.15, 1), "width": round(slot * 0.7, 1),
                     "y": round(CHART_TOP + plot - height, 1), "height": height,
                     "count": count, "monday": monday,
                     "label_x": round(index * slot + slot / 2, 1)})
    return bars


@bp.route("/dso/oversikt")
@dpo_required
def overview():
    from portal.processing import REGISTER

    data = services.overview()
    return render_template("dpo/overview.html", data=data, bars=chart_bars(data.weeks),
                           chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT,
                           kinds=kind_labels(), statuses=status_labels(), register=REGISTER,
                           format_date=format_date, format_decimal=format_decimal)
