"""The form for writing and changing a text. Labels are lazy so they translate per request."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, InputRequired, StopValidation

from portal.forms import CleanText, strip_filter
from portal.i18n import lazy_gettext as _l
from portal.texts.models import BODY_MAX, TITLE_MAX, TextKind

KIND_LABELS = {
    TextKind.PERSONLIGT_BREV: _l("Cover letter"),
    TextKind.CV: _l("CV"),
    TextKind.OVRIGT: _l("Other"),
}


def unify_newlines(value):
    """Line breaks as the user sees them: CRLF and CR become LF (one character each)."""
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n")
    return value


class MaxChars:
    """Length first: an oversized value is refused before CleanText scans every character."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, form, field) -> None:
        used = len(field.data or "")
        if used > self.max_length:
            raise StopValidation(_l("Use at most %(max)d characters (you used %(n)d).",
                                    max=self.max_length, n=used))


class TextForm(FlaskForm):
    title = StringField(
        _l("Title"), filters=[strip_filter],
        validators=[DataRequired(_l("Enter a title for the text.")), MaxChars(TITLE_MAX),
                    CleanText(TITLE_MAX)],
        render_kw={"autocomplete": "off"},
    )
    kind = RadioField(
        _l("What kind of text is it?"),
        choices=[SelectChoice(kind.value, label) for kind, label in KIND_LABELS.items()],
        validate_choice=False,  # AnyOf below gives our own, translated message
        validators=[InputRequired(_l("Choose what kind of text it is.")),
                    AnyOf([kind.value for kind in TextKind],
                          message=_l("Choose one of the kinds of text in the list."))],
    )
    body = TextAreaField(
        _l("Text"), filters=[unify_newlines, strip_filter],
        validators=[DataRequired(_l("Write the text.")), MaxChars(BODY_MAX),
                    CleanText(BODY_MAX, allow_newlines=True)],
        render_kw={"rows": 18, "spellcheck": "true"},
    )
    share = BooleanField(_l("Share with my job coach"))
