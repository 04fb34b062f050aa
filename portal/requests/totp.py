"""Two-factor login for the DPO: a TOTP authenticator (RFC 6238), enrolled on first login.

The secret is stored encrypted (AES-GCM, bound to the user id); a code is accepted within one
30-second step either side, and never twice for the same step (totp_last_step).
"""
from __future__ import annotations

import base64
import io
from datetime import datetime

import pyotp
import segno

from portal import audit
from portal.auth.models import User
from portal.clock import now
from portal.crypto import keyring
from portal.db import db

ISSUER = "Cowrite Integritetsportalen"
STEP_SECONDS = 30
VALID_WINDOW = 1  # steps either side
PENDING_KEY = "totp_pending_user"
ENROL_SECRET_KEY = "totp_enrol_secret"
PROOF_KEY = "totp_ok"


def _context(user_id: int) -> bytes:
    return f"totp:{user_id}".encode()


def new_secret() -> str:
    """A fresh base32 secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The provisioning URI as an SVG QR code in a data: URI (no external service)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False,
                                    dark="#000", light="#fff")
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def stored_secret(user: User) -> str | None:
    if user.totp_secret is None or user.totp_enrolled_at is None:
        return None
    return keyring().decrypt(user.totp_secret, _context(user.id)).decode()


def is_enrolled(user: User) -> bool:
    return user.totp_secret is not None and user.totp_enrolled_at is not None


def _step(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, moment: datetime | None = None) -> int | None:
    """The time step the code belongs to (within ±1 step), or None."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp, current = pyotp.TOTP(secret), _step(moment or now())
    for step in (current, current - VALID_WINDOW, current + VALID_WINDOW):
        if pyotp.utils.strings_equal(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def enrol(user: User, secret: str, code: str) -> bool:
    """Store the secret if the code proves the authenticator holds it."""
    step = matching_step(secret, code)
    if step is None:
        audit.record("totp.enrol_failed", actor_id=user.id, subject_id=user.id)
        return False
    user.totp_secret = keyring().encrypt(secret.encode(), _context(user.id))
    user.totp_enrolled_at = now()
    user.totp_last_step = step
    audit.record("totp.enrolled", actor_id=user.id, subject_id=user.id)
    db.session.flush()
    return True


def check_code(user: User, code: str) -> bool:
    """A valid code for a step after the last one used (a code is never accepted twice)."""
    secret = stored_secret(user)
    step = matching_step(secret, code) if secret else None
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        audit.record("totp.failed", actor_id=user.id, subject_id=user.id,
                     reused=step is not None)
        return False
    user.totp_last_step = step
    audit.record("totp.verified", actor_id=user.id, subject_id=user.id)
    db.session.flush()
    return True
