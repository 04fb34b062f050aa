"""Forms for adding a job coach and for accepting an invitation. Labels are lazy."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (BooleanField, EmailField, HiddenField, PasswordField, RadioField,
                     SelectField, StringField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, InputRequired, StopValidation, ValidationError

from portal.account.forms import OrgNumber
from portal.auth.forms import confirm_field, new_password_field
from portal.auth.passwords import MAX_LENGTH
from portal.billing.models import Organisation, OrganisationKind
from portal.forms import CleanText, ValidEmail, strip_filter
from portal.i18n import lazy_gettext as _l

NEW_ORGANISATION = "ny"

ORG_KIND_LABELS = {
    OrganisationKind.MATCHNINGSFORETAG: _l("Matching company"),
    OrganisationKind.FACKFORBUND: _l("Trade union"),
    OrganisationKind.INTRESSEORGANISATION: _l("Interest organisation"),
    OrganisationKind.OMSTALLNINGSFOND: _l("Transition fund"),
}



class OnlyForNewOrganisation:
    """The organisation fields count only when the user enters an organisation not listed."""

    def __call__(self, form, field) -> None:
        if form.organisation.data != NEW_ORGANISATION:
            field.errors[:] = []
            raise StopValidation()


def organisation_label(org: Organisation) -> str:
    from portal.validation import format_org_number

    return f"{org.name} ({format_org_number(org.org_number)})" if org.org_number else org.name


class AddCoachForm(FlaskForm):
    """The coach's address and name, and the organisation that will be invoiced."""

    coach_email = EmailField(
        _l("Your job coach's e-mail address"), filters=[strip_filter],
        validators=[DataRequired(_l("Enter your job coach's e-mail address.")), ValidEmail()],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    coach_name = StringField(
        _l("Your job coach's name (optional)"), filters=[strip_filter],
        validators=[CleanText(200)], render_kw={"autocomplete": "off"},
    )
    organisation = SelectField(
        _l("The organisation your job coach works for"), validate_choice=False,
        validators=[DataRequired(_l("Choose the organisation your job coach works for, or "
                                    "choose that it is not in the list."))],
    )
    org_name = StringField(
        _l("Name of the organisation"), filters=[strip_filter],
        validators=[OnlyForNewOrganisation(),
                    DataRequired(_l("Enter the name of the organisation.")), CleanText(200)],
        render_kw={"autocomplete": "off"},
    )
    org_number = StringField(
        _l("Organisation number"), filters=[strip_filter],
        validators=[OnlyForNewOrganisation(),
                    DataRequired(_l("Enter the organisation number.")), CleanText(20),
                    OrgNumber()],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    org_kind = RadioField(
        _l("Kind of organisation"), validate_choice=False,
        choices=[SelectChoice(kind.value, label) for kind, label in ORG_KIND_LABELS.items()],
        validators=[OnlyForNewOrganisation(),
                    InputRequired(_l("Choose what kind of organisation it is.")),
                    AnyOf([k.value for k in OrganisationKind],
                          message=_l("Choose one of the kinds of organisation in the list."))],
    )
    replaces = HiddenField()

    def __init__(self, *args, own_email: str = "", organisations=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.own_email = (own_email or "").lower()
        self.known = {str(org.id): org for org in organisations}
        self.organisation.choices = (
            [SelectChoice("", _l("Choose an organisation"))]
            + [SelectChoice(key, organisation_label(org)) for key, org in self.known.items()]
            + [SelectChoice(NEW_ORGANISATION, _l("The organisation is not in the list"))])

    def validate_coach_email(self, field) -> None:
        if field.data and field.data == self.own_email:
            raise ValidationError(_l("That is your own e-mail address. Enter your job "
                                     "coach's address."))

    def validate_organisation(self, field) -> None:
        if field.data != NEW_ORGANISATION and field.data not in self.known:
            raise ValidationError(_l("Choose one of the organisations in the list, or choose "
                                     "that it is not in the list."))

    def validate_org_number(self, field) -> None:
        from portal.coach.services import find_organisation_by_number

        existing = find_organisation_by_number(field.data)
        if existing is not None:
            raise ValidationError(_l("%(name)s already has this organisation number. Choose it "
                                     "in the list instead.", name=existing.name))

    @property
    def chosen_organisation(self) -> Organisation | None:
        """The listed organisation chosen, or None when a new one is entered."""
        return self.known.get(self.organisation.data)


class NewCoachAccountForm(FlaskForm):
    """A coach without an account chooses a name and a password, then accepts."""

    name = StringField(
        _l("Full name"), filters=[strip_filter],
        validators=[DataRequired(_l("Enter your name.")), CleanText(200)],
        render_kw={"autocomplete": "name"},
    )
    password = new_password_field()
    password_confirm = confirm_field()
    accept_policy = BooleanField(
        _l("I have read the privacy policy and understand how my data is handled."),
        validators=[DataRequired(_l("Confirm that you have read the privacy policy."))],
    )


class CoachLoginForm(FlaskForm):
    """A coach who already has an account logs in to accept."""

    password = PasswordField(
        _l("Password"), validators=[InputRequired(_l("Enter your password.")),
                                    CleanText(MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
