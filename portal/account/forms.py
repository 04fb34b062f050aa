"""Forms for correcting one's own data."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired

from portal.auth.forms import email_field
from portal.forms import CleanText, strip_filter
from portal.validation import normalise_org_number, normalise_phone


class Phone:
    def __call__(self, form, field) -> None:
        if not field.data:
            field.data = None
            return
        normalised = normalise_phone(field.data)
        if normalised is None:
            raise ValidationError(_l("Enter a phone number with digits only, like 070-123 45 67 "
                                     "or +44 20 7946 0958."))
        field.data = normalised


class OrgNumber:
    def __call__(self, form, field) -> None:
        if not field.data:
            field.data = None
            return
        normalised = normalise_org_number(field.data)
        if normalised is None:
            raise ValidationError(_l("Enter a valid organisation number: 10 digits, like "
                                     "556016-0680. Check the last digit."))
        field.data = normalised


class ProfileForm(FlaskForm):
    name = StringField(_l("Full name"), filters=[strip_filter],
                       validators=[DataRequired(_l("Enter your name.")), CleanText(200)],
                       render_kw={"autocomplete": "name"})
    phone = StringField(_l("Phone number (optional)"), filters=[strip_filter],
                        validators=[CleanText(40), Phone()],
                        render_kw={"autocomplete": "tel", "inputmode": "tel"})
    org_number = StringField(_l("Organisation number (optional)"), filters=[strip_filter],
                             validators=[CleanText(20), OrgNumber()],
                             render_kw={"inputmode": "numeric"})


class EmailChangeForm(FlaskForm):
    email = email_field(_l("New e-mail address"))
