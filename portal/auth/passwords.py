"""Password hashing (argon2id) and the password policy."""
from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults

# Common Swedish choices that the international list does not carry.
_SWEDISH_COMMON = {
    "lösenord", "losenord", "lösenord1", "losenord1", "lösenord123", "losenord123",
    "sommar2024", "sommar2025", "sommar2026", "vinter2025", "vinter2026", "hösten2026",
    "sverige1", "sverige123", "stockholm", "stockholm1", "göteborg", "goteborg1",
    "qwertyuiop", "asdfghjkl", "hejsan123", "hejhej123", "cowrite1", "cowrite123",
    "arbetsformedlingen", "arbetsförmedlingen", "jobbsokare", "jobbsökare",
}
# A dummy hash so an unknown e-mail costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"]) | _SWEDISH_COMMON


def is_common(password: str) -> bool:
    return password.lower() in _common_passwords()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-work check; a missing hash still pays for one verification."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
