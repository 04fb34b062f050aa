"""Error pages in the user's language; a CSRF failure and a rate limit explained plainly."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import g, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def _page(status: int, title: str, message: str):
    return render_template("errors/error.html", status=status, title=title,
                           message=message), status


def register_error_handlers(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return _page(400, _("The form has expired"),
                     _("For your security the form could not be verified. Go back, reload the "
                       "page and try again. Nothing was changed."))

    @app.errorhandler(429)
    def too_many(exc):
        if request.endpoint in {"auth.login", "auth.reauthenticate"}:
            message = _("Too many failed login attempts. Wait 15 minutes and try again, "
                        "or reset your password.")
        else:
            message = _("You have made too many attempts in a short time. Wait a while and "
                        "try again.")
        return _page(429, _("Too many attempts"), message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        titles = {
            400: (_("Something was wrong with the request"),
                  _("The request could not be handled. Go back and try again. "
                    "Nothing was changed.")),
            403: (_("Not allowed"), _("You do not have access to this page.")),
            404: (_("Page not found"),
                  _("The page does not exist or you do not have access to it. "
                    "Check the address or go to the start page.")),
            405: (_("Not allowed"), _("That action cannot be done this way.")),
            413: (_("Too much data"),
                  _("What you sent is too large. Shorten the text or choose a smaller file.")),
        }
        title, message = titles.get(exc.code, (_("Something went wrong"),
                                               _("The request could not be handled.")))
        return _page(exc.code or 500, title, message)

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    def database_unavailable(exc: sa.exc.DBAPIError):
        """The database cannot be reached (a restart, a failover): say so, with a 503 that
        asks clients to come back, instead of a generic 500. The pool checks connections
        before use, so the next request after the database is back succeeds."""
        from portal.db import db
        from portal.extensions import login_manager

        log.warning("database unavailable on %s %s (%s)", request.method, request.endpoint,
                    type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__)
        try:
            db.session.rollback()
        except sa.exc.DBAPIError:
            db.session.close()
        g._login_user = login_manager.anonymous_user()  # the page must not query for the user
        body, status = _page(503, _("The service is briefly unavailable"),
                             _("We cannot reach our database just now. Try again in a minute. "
                               "If you were saving something, check afterwards that it was "
                               "saved."))
        return body, status, {"Retry-After": "30"}

    @app.errorhandler(Exception)
    def server_error(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error on %s %s", request.method, request.endpoint)
        return _page(500, _("Something went wrong on our side"),
                     _("We could not complete the request. Nothing is lost; try again in a "
                       "moment. If it keeps happening, contact us."))
