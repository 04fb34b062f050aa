"""Forms for correcting one's own data."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired

from portal.auth.forms import email_field
from portal.forms import CleanText, strip_filter
from portal.i18n import lazy_gettext as _l
from portal.validation import normalise_org_number, normalise_phone


class Normalised:
    """Optional field: empty becomes None, anything else must normalise or is an error."""

    def __init__(self, normalise, message) -> None:
        self.normalise, self.message = normalise, message

    def __call__(self, form, field) -> None:
        if not field.data:
            field.data = None
            return
        value = self.normalise(field.data)
        if value is None:
            raise ValidationError(self.message)
        field.data = value


class Phone(Normalised):
    def __init__(self) -> None:
        super().__init__(normalise_phone, _l("Enter a phone number with digits only, like "
                                             "070-123 45 67 or +44 20 7946 0958."))


class OrgNumber(Normalised):
    def __init__(self) -> None:
        super().__init__(normalise_org_number, _l("Enter a valid organisation number: 10 "
                                                  "digits, like 556016-0680. Check the last "
                                                  "digit."))


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
