"""Forms for the DPO console. Labels and messages are lazy so they translate per request."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, InputRequired

from portal.forms import CleanText, strip_filter
from portal.i18n import lazy_gettext as _l

REASON_MAX = 2000


class TotpCodeForm(FlaskForm):
    code = StringField(
        _l("Code from your authenticator app"), filters=[strip_filter],
        validators=[DataRequired(_l("Enter the 6-digit code from your authenticator app.")),
                    CleanText(20)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                   "spellcheck": "false"})


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for rejecting (the person is told this)"), filters=[strip_filter],
        validators=[DataRequired(_l("Write the reason for rejecting the request.")),
                    CleanText(REASON_MAX, allow_newlines=True)])


class CompletionForm(FlaskForm):
    note = TextAreaField(
        _l("What is missing (the person is told this)"), filters=[strip_filter],
        validators=[DataRequired(_l("Write what the person needs to add.")),
                    CleanText(REASON_MAX, allow_newlines=True)])


class ExtendForm(FlaskForm):
    months = RadioField(
        _l("Extend by"),
        choices=[SelectChoice("1", _l("1 month")), SelectChoice("2", _l("2 months"))],
        validate_choice=False,
        validators=[InputRequired(_l("Choose 1 or 2 months.")),
                    AnyOf(["1", "2"], message=_l("Choose 1 or 2 months."))])
    ext_reason = TextAreaField(
        _l("Reason for the extension (the person is told this)"), filters=[strip_filter],
        validators=[DataRequired(_l("Write the reason for the extension.")),
                    CleanText(REASON_MAX, allow_newlines=True)])
