"""Invoice bases per organisation and month (CSV and PDF).

Who may see them: the DPO. The DPO plays the "ekonomi" (finance) role for now; when a finance
role exists, add it to `_FINANCE` and nothing else changes. Every download is audited.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired

from portal.auth.models import Role
from portal.billing import services
from portal.billing.models import Organisation
from portal.coach.forms import ORG_KIND_LABELS
from portal.db import db
from portal.forms import CleanText, strip_filter
from portal.i18n import lazy_gettext as _l
from portal.security import role_required

bp = Blueprint("billing", __name__)
_FINANCE = (Role.DPO,)


class MonthForm(FlaskForm):
    """The month to show (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    month = StringField(
        _l("Month"), filters=[strip_filter],
        validators=[DataRequired(_l("Enter a month, like 2026-11.")), CleanText(20)],
        render_kw={"type": "month", "inputmode": "numeric", "autocomplete": "off"},
    )

    def validate_month(self, field) -> None:
        if services.parse_month(field.data) is None:
            raise ValidationError(_l("Enter the month as year and month with a hyphen, like "
                                     "2026-11."))


@bp.route("/dso/fakturaunderlag")
@role_required(*_FINANCE)
def index():
    """Totals per organisation for one month, with links to each organisation's basis."""
    default = services.previous_month()
    submitted = "month" in request.args
    form = MonthForm(formdata=request.args if submitted else None,
                     data={"month": default.key})
    if submitted and not form.validate():
        return render_template("billing/index.html", form=form, month=None, totals=[],
                               unattributed=0), 400
    month = services.parse_month(form.month.data) or default
    totals = services.organisation_totals(month)
    return render_template("billing/index.html", form=form, month=month, totals=totals,
                           grand_total=sum(t.events for t in totals),
                           unattributed=services.unattributed_count(month),
                           kind_labels=ORG_KIND_LABELS)


def _basis_or_404(month_key: str, organisation_id: int) -> services.InvoiceBasis:
    month = services.parse_month(month_key)
    organisation = db.session.get(Organisation, organisation_id)
    if month is None or organisation is None:
        abort(404)
    return services.invoice_basis(organisation, month)


def _download(body: bytes, content_type: str, filename: str) -> Response:
    response = Response(body, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


_FORMATS = {"csv": (services.basis_csv, "text/csv; charset=utf-8"),
            "pdf": (services.basis_pdf, "application/pdf")}


@bp.route("/dso/fakturaunderlag/<month_key>/<int:organisation_id>.<any(csv, pdf):fmt>")
@role_required(*_FINANCE)
def download(month_key: str, organisation_id: int, fmt: str):
    basis = _basis_or_404(month_key, organisation_id)
    render, content_type = _FORMATS[fmt]
    body = render(basis)
    services.record_download(current_user.id, basis, fmt)
    db.session.commit()
    return _download(body, content_type,
                     f"fakturaunderlag-{basis.month.key}-org{organisation_id}.{fmt}")
