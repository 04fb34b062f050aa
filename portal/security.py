"""Roles, recent authentication, safe redirects and the HTTP security headers."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, redirect, request, session, url_for
from flask_login import current_user

from portal.auth.models import Role
from portal.clock import now

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")


def role_required(*roles: Role):
    """Logged in with one of `roles`; anything else is a 404 (no hint the page exists)."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(404)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def mark_authenticated() -> None:
    """Remember that the password was just given (for the recent-authentication guard)."""
    session["auth_at"] = now().timestamp()


def recently_authenticated() -> bool:
    stamp = session.get("auth_at")
    if not isinstance(stamp, (int, float)):
        return False
    given = datetime.fromtimestamp(stamp, timezone.utc)
    return now() - given <= current_app.config["RECENT_AUTH_WINDOW"]


def recent_auth_required(view):
    """Ask for the password again unless it was given within the last 10 minutes."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if not recently_authenticated():
            target = request.full_path if request.method == "GET" else request.path
            return redirect(url_for("auth.reauthenticate", next=target.rstrip("?")))
        return view(*args, **kwargs)
    return wrapped


def safe_next(target: str | None, default: str | None = "account.overview") -> str | None:
    """A local path to go to next; anything pointing elsewhere falls back to `default`
    (an endpoint name, or None to let the caller decide)."""
    if target and _is_local_path(target):
        return target
    return url_for(default) if default else None


def _is_local_path(target: str) -> bool:
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def apply_security_headers(response):
    """Headers on every response; personal pages are never stored by any cache."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if current_app.config["SESSION_COOKIE_SECURE"]:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if request.endpoint != "static":
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    else:
        headers["Cache-Control"] = "public, max-age=3600"
    return response


def reject_undecodable_forms():
    """A url-encoded form must be UTF-8; otherwise say so (before CSRF, which would only see
    an empty form and blame an expired page)."""
    if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded":
        return None
    if (request.content_length or 0) > current_app.config["MAX_FORM_MEMORY_SIZE"]:
        abort(413)  # Werkzeug caps only multipart text fields; cap url-encoded forms too
    from urllib.parse import unquote_to_bytes

    raw = request.get_data(cache=True)
    try:
        for pair in raw.split(b"&"):
            unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        from flask import render_template
        from flask_babel import gettext as _

        return render_template(
            "errors/error.html", status=400, title=_("The form could not be read"),
            message=_("The form contained characters that could not be read (the text was not "
                      "UTF-8). Check the text, reload the page and try again. Nothing was "
                      "changed.")), 400
    return None
