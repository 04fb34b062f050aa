"""Deadline arithmetic across month ends, the extension rules, and receipt signatures."""
from datetime import date, datetime, timezone

import pytest

from portal.requests.deadlines import can_extend, days_left, due_date
from portal.requests.signing import load_private_key, new_private_key_b64, sign, verify


def stockholm_noon(y, m, d):
    return datetime(y, m, d, 11, 0, tzinfo=timezone.utc)  # 12:00 or 13:00 in Stockholm


@pytest.mark.parametrize(("received", "due"), [
    ((2026, 1, 31), date(2026, 2, 28)),
    ((2028, 1, 31), date(2028, 2, 29)),   # leap year
    ((2026, 3, 31), date(2026, 4, 30)),
    ((2026, 12, 15), date(2027, 1, 15)),
    ((2026, 5, 10), date(2026, 6, 10)),
])
def test_one_calendar_month(received, due):
    assert due_date(stockholm_noon(*received)) == due


def test_stockholm_day_decides_not_utc():
    late_evening_utc = datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)  # 1 Feb in Stockholm
    assert due_date(late_evening_utc) == date(2026, 3, 1)


@pytest.mark.parametrize(("months", "due"), [(1, date(2026, 3, 31)), (2, date(2026, 4, 30))])
def test_extension_by_one_or_two_months(months, due):
    assert due_date(stockholm_noon(2026, 1, 31), months) == due


@pytest.mark.parametrize("months", [-1, 3])
def test_extension_beyond_two_months_is_refused(months):
    with pytest.raises(ValueError):
        due_date(stockholm_noon(2026, 1, 31), months)


def test_extension_only_once_and_only_within_the_first_month():
    received = stockholm_noon(2026, 1, 31)
    assert can_extend(received, stockholm_noon(2026, 2, 28), already_extended=False)
    assert not can_extend(received, stockholm_noon(2026, 3, 1), already_extended=False)
    assert not can_extend(received, stockholm_noon(2026, 2, 10), already_extended=True)


def test_days_left_goes_negative_when_overdue():
    received = stockholm_noon(2026, 1, 31)
    assert days_left(received, stockholm_noon(2026, 2, 21)) == 7
    assert days_left(received, stockholm_noon(2026, 3, 2)) == -2


def test_receipt_signature_verifies_and_detects_any_change():
    key = load_private_key(new_private_key_b64())
    receipt = {"reference": "DSR-2026-000123", "name": "Anna Andersson",
               "upload_sha256": "ab" * 32, "received_at": "2026-11-25T21:00:00+01:00"}
    signature = sign(key, receipt)
    assert verify(key.public_key(), receipt, signature)
    assert not verify(key.public_key(), {**receipt, "name": "Anna Anderson"}, signature)
    assert not verify(key.public_key(), receipt, "inte-en-signatur")
    other = load_private_key(new_private_key_b64())
    assert not verify(other.public_key(), receipt, signature)
