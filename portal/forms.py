"""Shared form pieces: text hygiene, e-mail validation, an empty form for button actions."""
from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import ValidationError

from portal.i18n import lazy_gettext as _l


class ButtonForm(FlaskForm):
    """A form with no fields: a CSRF-protected button for a state change."""


def normalise_text(value: str | None) -> str:
    """NFC-normalised and stripped; None becomes empty."""
    return unicodedata.normalize("NFC", value or "").strip()


def _has_bad_characters(value: str, allow_newlines: bool) -> bool:
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()
    for ch in value:
        if ch == "\ufffd":  # the replacement character: the browser sent invalid UTF-8
            return True
        if unicodedata.category(ch) in {"Cc", "Cs", "Co", "Cn"} and ch not in allowed:
            return True
    return False


class CleanText:
    """Rejects invalid UTF-8 and control characters, and enforces a maximum length."""

    def __init__(self, max_length: int, allow_newlines: bool = False) -> None:
        self.max_length = max_length
        self.allow_newlines = allow_newlines

    def __call__(self, form, field) -> None:
        value = field.data or ""
        if _has_bad_characters(value, self.allow_newlines):
            raise ValidationError(_l("The text contains characters that cannot be used. "
                                     "Remove them and try again."))
        if len(value) > self.max_length:
            raise ValidationError(_l("Use at most %(max)d characters (you used %(n)d).",
                                     max=self.max_length, n=len(value)))


class ValidEmail:
    """A syntactically valid e-mail address, without line breaks; normalised to lower case."""

    def __call__(self, form, field) -> None:
        value = field.data or ""
        if len(value) > 254:
            raise ValidationError(_l("The e-mail address is too long (at most 254 characters)."))
        if _has_bad_characters(value, allow_newlines=False) or any(c.isspace() for c in value):
            raise ValidationError(_l("Enter an e-mail address without spaces or line breaks, "
                                     "like namn@exempel.se."))
        try:
            result = validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            raise ValidationError(_l("Enter an e-mail address in the correct format, "
                                     "like namn@exempel.se.")) from None
        field.data = result.normalized.lower()


def strip_filter(value):
    return normalise_text(value) if isinstance(value, str) else value
