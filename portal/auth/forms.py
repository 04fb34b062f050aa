"""Forms for accounts. Labels are lazy so they translate per request."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, ValidationError

from portal.auth.passwords import MAX_LENGTH, MIN_LENGTH, is_common
from portal.forms import CleanText, ValidEmail, strip_filter
from portal.i18n import lazy_gettext as _l
from portal.labels import ACCESS_SOURCE_LABELS


def email_field(label=None):
    return EmailField(
        label or _l("E-mail address"), filters=[strip_filter],
        validators=[DataRequired(_l("Enter your e-mail address.")), ValidEmail()],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )


class NewPassword:
    """The password policy: 8–128 characters, not one of the commonly used passwords."""

    def __call__(self, form, field) -> None:
        value = field.data or ""
        if len(value) < MIN_LENGTH:
            raise ValidationError(_l("The password must be at least %(min)d characters long.",
                                     min=MIN_LENGTH))
        if len(value) > MAX_LENGTH:
            raise ValidationError(_l("The password can be at most %(max)d characters long.",
                                     max=MAX_LENGTH))
        if "\ufffd" in value or any(ord(c) < 32 for c in value):
            raise ValidationError(_l("The password contains characters that cannot be used."))
        if is_common(value):
            raise ValidationError(_l("This password is too common and easy to guess. "
                                     "Choose another, for example three or four random words."))


def new_password_field(label=None):
    return PasswordField(
        label or _l("Password"),
        validators=[InputRequired(_l("Enter a password.")), NewPassword()],
        render_kw={"autocomplete": "new-password"},
    )


def confirm_field(of: str = "password"):
    return PasswordField(
        _l("Repeat the password"),
        validators=[InputRequired(_l("Repeat the password.")),
                    EqualTo(of, _l("The passwords do not match."))],
        render_kw={"autocomplete": "new-password"},
    )


class RegisterForm(FlaskForm):
    name = StringField(
        _l("Full name"), filters=[strip_filter],
        validators=[DataRequired(_l("Enter your name.")), CleanText(200)],
        render_kw={"autocomplete": "name"},
    )
    email = email_field()
    password = new_password_field()
    password_confirm = confirm_field()
    access_source = RadioField(
        _l("How did you get access to Cowrite?"),
        choices=[SelectChoice(source.value, label)
                 for source, label in ACCESS_SOURCE_LABELS.items()],
        validators=[InputRequired(_l("Choose how you got access to Cowrite."))],
    )
    no_newsletter = BooleanField(_l("No thanks, I do not want the newsletter."))
    no_offers = BooleanField(_l("No thanks, I do not want offers."))
    accept_policy = BooleanField(
        _l("I have read the privacy policy and understand how my data is handled."),
        validators=[DataRequired(_l("Confirm that you have read the privacy policy."))],
    )


class LoginForm(FlaskForm):
    email = email_field()
    password = PasswordField(
        _l("Password"), validators=[InputRequired(_l("Enter your password.")), CleanText(MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )


class EmailOnlyForm(FlaskForm):
    email = email_field()


class SetPasswordForm(FlaskForm):
    password = new_password_field(_l("New password"))
    password_confirm = confirm_field()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(_l("Enter your current password.")), CleanText(MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    password = new_password_field(_l("New password"))
    password_confirm = confirm_field()


class ReauthForm(FlaskForm):
    password = PasswordField(
        _l("Password"), validators=[InputRequired(_l("Enter your password.")), CleanText(MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
