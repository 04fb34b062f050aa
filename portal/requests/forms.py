"""Forms for filing a rights request: signature, declaration, password and the ID copy."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired

from portal.forms import CleanText, strip_filter
from portal.i18n import lazy_gettext as _l

ACCEPT = "image/jpeg,image/png,image/heic,application/pdf"

# Created before the signed fields so that it comes first (WTForms orders by creation).
_DETAILS = TextAreaField(
    _l("What is your request about?"), filters=[strip_filter],
    validators=[DataRequired(_l("Describe what your request is about.")),
                CleanText(5000, allow_newlines=True)])


class SignedRequestForm(FlaskForm):
    """The signed part every request has."""

    signature_name = StringField(
        _l("Your full name, as your signature"), filters=[strip_filter],
        validators=[DataRequired(_l("Type your full name as your signature.")),
                    CleanText(200)])
    declaration = BooleanField(
        _l("I declare that the information I have given is correct and that I am the person "
           "named in this request."),
        validators=[DataRequired(_l("Tick the box to confirm the declaration."))])
    password = PasswordField(
        _l("Your password"),
        validators=[InputRequired(_l("Enter your password."))])
    id_copy = FileField(_l("Copy of your ID document"))


class ErasureRequestForm(SignedRequestForm):
    """A request for erasure (Art. 17); may instead be signed by hand on the printed form."""

    signed_form = FileField(_l("Scan of the request form you signed by hand (optional)"))


class DescribedRequestForm(SignedRequestForm):
    """Restriction, rectification or objection: the user says what it is about."""

    details = _DETAILS


class CompletionForm(FlaskForm):
    """A new ID copy (and an optional note) when the DPO has asked for completion."""

    id_copy = FileField(_l("New copy of your ID document"))
    note = TextAreaField(_l("Message to the data protection officer (optional)"),
                         filters=[strip_filter], validators=[CleanText(2000, allow_newlines=True)])
