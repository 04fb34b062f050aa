"""Account operations. Each flushes and audits; the calling view commits once."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager
from flask import current_app

from portal import audit
from portal.auth.models import (AccessSource, AuthSession, LinkToken, Role,
                                TokenPurpose, User)
from portal.auth.passwords import hash_password, needs_rehash, verify_password
from portal.clock import now
from portal.db import db
from portal.mail.services import queue_mail
from portal.urls import external_url

POLICY_VERSION = "2026-11"
TOKEN_TTL = {
    TokenPurpose.VERIFY_EMAIL: timedelta(days=7),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
    TokenPurpose.SET_PASSWORD: timedelta(days=7),
    TokenPurpose.CHANGE_EMAIL: timedelta(hours=24),
}
_TOUCH_EVERY = timedelta(minutes=5)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.lower()))


# --- link tokens ----------------------------------------------------------------------------

def issue_token(user: User, purpose: TokenPurpose, new_email: str | None = None) -> str:
    """Create a single-use token (only its hash is stored) and return the raw value."""
    raw = secrets.token_urlsafe(32)
    db.session.add(LinkToken(user_id=user.id, purpose=purpose, token_hash=_digest(raw),
                             expires_at=now() + TOKEN_TTL[purpose], new_email=new_email))
    db.session.flush()
    return raw


class TokenProblem(Enum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


@dataclass
class TokenCheck:
    token: LinkToken | None
    problem: TokenProblem | None


def check_token(raw: str | None, purpose: TokenPurpose | None = None) -> TokenCheck:
    """Look a raw token up; say precisely why it cannot be used, if it cannot."""
    if not raw or len(raw) > 100:
        return TokenCheck(None, TokenProblem.UNKNOWN)
    token = db.session.scalar(sa.select(LinkToken).where(LinkToken.token_hash == _digest(raw)))
    if token is None or (purpose is not None and token.purpose != purpose):
        return TokenCheck(None, TokenProblem.UNKNOWN)
    if token.used_at is not None:
        return TokenCheck(token, TokenProblem.USED)
    if token.expires_at <= now():
        return TokenCheck(token, TokenProblem.EXPIRED)
    return TokenCheck(token, None)


def consume_token(token: LinkToken) -> None:
    """Mark this token used and void the user's other unused tokens of the same purpose."""
    stamp = now()
    db.session.execute(
        sa.update(LinkToken)
        .where(LinkToken.user_id == token.user_id, LinkToken.purpose == token.purpose,
               LinkToken.used_at.is_(None))
        .values(used_at=stamp)
    )
    token.used_at = stamp


def link_for(raw: str) -> str:
    return external_url("auth.follow_link", token=raw)


# --- registration and verification ----------------------------------------------------------

def register(name: str, email: str, password: str, access_source: AccessSource,
             locale: str, newsletter: bool = True, offers: bool = True) -> User | None:
    """Create an unverified account and mail a verification link.

    An address that already has an account gets a notice instead, so the form's answer never
    tells whether an address is registered. Returns the new user, or None.
    """
    existing = find_user_by_email(email)
    if existing is not None:
        if existing.is_verified:
            queue_mail("account_exists", to_addr=existing.email, to_name=existing.name,
                       locale=existing.locale or locale, user_id=existing.id,
                       login_url=external_url("auth.login"),
                       reset_url=external_url("auth.forgot_password"))
        else:
            send_verification(existing)
        return None
    stamp = now()
    user = User(name=name, email=email, password_hash=hash_password(password), role=Role.USER,
                access_source=access_source, locale=locale, policy_version=POLICY_VERSION,
                policy_accepted_at=stamp, password_changed_at=stamp, created_at=stamp,
                last_active_at=stamp)
    db.session.add(user)
    db.session.flush()
    audit.record("account.registered", actor_id=user.id, subject_id=user.id,
                 access_source=access_source.value, policy_version=POLICY_VERSION)
    from portal.consent.models import ConsentSource, Purpose
    from portal.consent.services import record_consent

    for purpose, wanted in ((Purpose.NEWSLETTER, newsletter), (Purpose.OFFERS, offers)):
        record_consent(user.id, purpose, wanted, ConsentSource.REGISTRATION, actor_id=user.id)
    send_verification(user)
    return user


def send_verification(user: User) -> None:
    raw = issue_token(user, TokenPurpose.VERIFY_EMAIL)
    queue_mail("verify_email", to_addr=user.email, to_name=user.name, locale=user.locale,
               user_id=user.id, name=user.name, link=link_for(raw),
               days=TOKEN_TTL[TokenPurpose.VERIFY_EMAIL].days)


def verify_email(token: LinkToken) -> User:
    user = token.user
    consume_token(token)
    if user.email_verified_at is None:
        user.email_verified_at = now()
        audit.record("account.email_verified", actor_id=user.id, subject_id=user.id)
    return user


# --- sessions -------------------------------------------------------------------------------

class LoginResult(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    UNVERIFIED = "unverified"


def authenticate(email: str, password: str) -> tuple[LoginResult, User | None]:
    """Check credentials with the same work and the same answer for unknown addresses."""
    user = find_user_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        if user is not None:
            audit.record("login.failed", subject_id=user.id)
            record_login(user, succeeded=False)
        return LoginResult.BAD_CREDENTIALS, None
    if not user.is_verified:
        return LoginResult.UNVERIFIED, user
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return LoginResult.OK, user


def start_session(user: User) -> str:
    """Create a server-side session for `user`; the raw token goes into the cookie only."""
    raw = secrets.token_urlsafe(32)
    stamp = now()
    record = AuthSession(user_id=user.id, token_hash=_digest(raw), created_at=stamp,
                         last_seen_at=stamp)
    db.session.add(record)
    user.last_active_at = stamp
    db.session.flush()
    user.session_token, user.auth_session = raw, record
    audit.record("login.succeeded", actor_id=user.id, subject_id=user.id)
    record_login(user, succeeded=True)
    return raw


def record_login(user: User, succeeded: bool) -> None:
    """Keep a login in the user's history: network prefix and browser family only."""
    from flask import has_request_context, request

    from portal.auth.models import LoginEvent

    ip, agent = ("", "") if not has_request_context() else (
        request.remote_addr or "", request.headers.get("User-Agent", ""))
    db.session.add(LoginEvent(user_id=user.id, succeeded=succeeded, ip_prefix=truncate_ip(ip),
                              browser=browser_family(agent)))


def truncate_ip(address: str) -> str:
    """IPv4 to its /24, IPv6 to its /48: the network, not the device."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("SamsungBrowser/", "Samsung Internet"),
             ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium/", "Chrome"),
             ("Safari/", "Safari"))


def browser_family(user_agent: str) -> str:
    """The browser's family name from its User-Agent; never the full string."""
    for marker, family in _BROWSERS:
        if marker in user_agent:
            return family
    return "other" if user_agent else ""


def load_session(raw: str) -> User | None:
    """The user behind a session token, if the session still stands (idle and absolute limits)."""
    if not raw or len(raw) > 100:
        return None
    record = db.session.scalar(
        sa.select(AuthSession).join(AuthSession.user)
        .options(contains_eager(AuthSession.user))  # one statement, not two
        .where(AuthSession.token_hash == _digest(raw))
    )
    if record is None:
        return None
    stamp, cfg = now(), current_app.config
    if (stamp - record.last_seen_at > cfg["SESSION_IDLE_TIMEOUT"]
            or stamp - record.created_at > cfg["SESSION_ABSOLUTE_TIMEOUT"]):
        db.session.delete(record)
        db.session.commit()
        return None
    user = record.user
    if not user.is_active:
        return None
    # The session's last_seen_at (idle limit) every 5 minutes; the account's last_active_at
    # (the 6-month inactivity rule) at most once an hour. Any activity after an inactivity
    # warning clears the warning at once, which cancels the pending deletion.
    changed = False
    if stamp - record.last_seen_at > _TOUCH_EVERY:
        record.last_seen_at, changed = stamp, True
    if stamp - user.last_active_at >= timedelta(hours=1):
        user.last_active_at, changed = stamp, True
    if user.inactivity_warned_at is not None:
        user.inactivity_warned_at, changed = None, True
    if changed:
        db.session.commit()
    user.session_token, user.auth_session = raw, record
    return user


def end_session(user: User) -> None:
    if user.auth_session is not None:
        db.session.delete(user.auth_session)
        audit.record("logout", actor_id=user.id, subject_id=user.id)


def end_all_sessions(user: User, reason: str) -> int:
    """End every session of `user` at once (logout everywhere, new password, erasure)."""
    result = db.session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user.id))
    audit.record("sessions.ended", actor_id=user.id, subject_id=user.id, reason=reason,
                 count=result.rowcount)
    return result.rowcount


# --- passwords ------------------------------------------------------------------------------

def request_password_reset(email: str) -> None:
    """Mail a reset link if the address has an account; silently nothing otherwise."""
    user = find_user_by_email(email)
    if user is None or not user.is_active:
        return
    raw = issue_token(user, TokenPurpose.RESET_PASSWORD)
    queue_mail("reset_password", to_addr=user.email, to_name=user.name, locale=user.locale,
               user_id=user.id, name=user.name, link=link_for(raw),
               minutes=int(TOKEN_TTL[TokenPurpose.RESET_PASSWORD].total_seconds() // 60))
    audit.record("password.reset_requested", subject_id=user.id)


def set_password_with_token(token: LinkToken, password: str) -> User:
    """Set a new password from a mailed link; it also proves the address, and ends sessions."""
    user = token.user
    consume_token(token)
    _set_password(user, password, reason=token.purpose.value)
    if user.email_verified_at is None:
        user.email_verified_at = now()
    return user


def change_password(user: User, password: str) -> None:
    """Change the password of a logged-in user; every other session ends."""
    _set_password(user, password, reason="changed")


def _set_password(user: User, password: str, reason: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = now()
    end_all_sessions(user, reason=f"password.{reason}")
    audit.record("password.set", actor_id=user.id, subject_id=user.id, reason=reason)
    if reason != TokenPurpose.SET_PASSWORD.value:
        queue_mail("password_changed", to_addr=user.email, to_name=user.name,
                   locale=user.locale, user_id=user.id, name=user.name,
                   reset_url=external_url("auth.forgot_password"))


# --- administration -------------------------------------------------------------------------

def create_account(email: str, role: Role, name: str = "") -> tuple[User, str]:
    """Create an account without a password; returns it and a raw set-password token."""
    user = User(email=email.lower(), name=name or email.split("@")[0], role=role,
                access_source=AccessSource.EGEN_BETALNING if role == Role.USER else None)
    db.session.add(user)
    db.session.flush()
    audit.record("account.created_by_admin", subject_id=user.id, role=role.value)
    return user, issue_token(user, TokenPurpose.SET_PASSWORD)


def purge_unverified_accounts() -> int:
    """Delete registrations never verified within the allowed time: no relationship, no data."""
    cutoff = now() - current_app.config["UNVERIFIED_ACCOUNT_TTL"]
    ids = db.session.scalars(
        sa.select(User.id).where(User.email_verified_at.is_(None), User.created_at < cutoff)
    ).all()
    for user_id in ids:
        db.session.execute(sa.delete(User).where(User.id == user_id))
        audit.record("account.unverified_deleted", subject_id=user_id)
    return len(ids)
