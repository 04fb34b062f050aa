"""Swedish identifiers and phone numbers: validated and normalised."""
from __future__ import annotations

import re

import phonenumbers

_SEPARATORS = re.compile(r"[\s\-]")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by Swedish organisation and personal numbers."""
    total = 0
    for index, char in enumerate(digits):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def normalise_org_number(value: str) -> str | None:
    """Ten digits with a valid check digit, or None. Accepts NNNNNN-NNNN and spaces."""
    digits = _SEPARATORS.sub("", value or "")
    if not re.fullmatch(r"\d{10}", digits) or not luhn_valid(digits):
        return None
    return digits


def format_org_number(digits: str | None) -> str:
    return f"{digits[:6]}-{digits[6:]}" if digits and len(digits) == 10 else (digits or "")


def normalise_phone(value: str) -> str | None:
    """E.164 (+46701234567) for a valid Swedish or international number, else None."""
    text = (value or "").strip()
    if not text or re.search(r"[^\d\s\-+()]", text):
        return None
    try:
        number = phonenumbers.parse(text, "SE")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str | None) -> str:
    """Swedish numbers in national form (070-123 45 67), others internationally."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164, None)
    fmt = (phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 46
           else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, fmt)
