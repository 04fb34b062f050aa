"""Integritetsportalen: Cowrite's self-service privacy portal."""
from __future__ import annotations

import logging
import os
import re

from flask import Flask, g, has_request_context, request
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import i18n
from portal.config import ROOT, load_config
from portal.db import db as database
from portal.extensions import babel, csrf, limiter, login_manager


def create_app(config: dict | None = None) -> Flask:
    """Application factory: config from the environment plus optional overrides."""
    app = Flask(__name__, static_folder=str(ROOT / "static"),
                template_folder=str(ROOT / "templates"), instance_path=str(ROOT / "instance"))
    app.jinja_environment = i18n.TranslatingEnvironment  # before app.jinja_env is first used
    app.config.update(load_config(config))
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    import portal.models  # noqa: F401  (register every table)
    import portal.tasks  # noqa: F401  (register the reconcilers)

    database.init_app(app)
    from portal.security import reject_undecodable_forms

    app.before_request(reject_undecodable_forms)  # registered before CSRF's own check
    csrf.init_app(app)
    _init_babel(app)
    _init_login(app)
    _init_limiter(app)
    _register_blueprints(app)
    _register_hooks(app)
    from portal.urls import install_link_cache

    install_link_cache(app)
    from portal.errors import register_error_handlers
    from portal.cli import register_cli

    from portal.crypto import Keyring

    app.extensions["portal_keyring"] = Keyring(app.config["DATA_KEYS"])  # fail fast if malformed
    register_error_handlers(app)
    register_cli(app)
    if os.environ.get("PORTAL_BENCH_ROUTES") == "1":
        _register_bench_routes(app)
    _quiet_secrets_in_logs()
    return app


def select_locale() -> str:
    """Account language, then the language cookie, then the browser's preference; else sv."""
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return languages[0]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if request.cookies.get("lang") in languages:
        return request.cookies["lang"]
    return request.accept_languages.best_match(languages) or languages[0]


def _init_babel(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale,
                   timezone_selector=lambda: app.config["BABEL_DEFAULT_TIMEZONE"])
    i18n.install(app)
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.filters["datetime"] = i18n.format_datetime
    app.jinja_env.filters["dateformat"] = i18n.format_date
    from portal.validation import format_org_number, format_phone

    app.jinja_env.filters["phone"] = format_phone
    app.jinja_env.filters["orgnr"] = format_org_number
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.add_extension("jinja2.ext.do")
    from portal.labels import jinja_globals

    app.jinja_env.globals.update(jinja_globals())


def _init_login(app: Flask) -> None:
    from portal.i18n import lazy_gettext as _l

    from portal.auth.services import load_session

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Log in to see that page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # sessions are server-side records instead
    login_manager.user_loader(load_session)


def _init_limiter(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS",
                          {"socket_connect_timeout": 0.5, "socket_timeout": 1.0})
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "portal-limits")
    limiter.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from portal.account.views import bp as account_bp
    from portal.auth.views import bp as auth_bp
    from portal.consent.cookies import bp as cookies_bp
    from portal.consent.marketing import bp as marketing_bp
    from portal.pages.views import bp as pages_bp
    from portal.billing.views import bp as billing_bp
    from portal.coach.views import bp as coach_bp
    from portal.exports.views import bp as exports_bp
    from portal.requests.dpo_views import bp as dpo_bp
    from portal.requests.views import bp as requests_bp
    from portal.retention.views import bp as retention_bp
    from portal.texts.views import bp as texts_bp

    for bp in (pages_bp, auth_bp, account_bp, texts_bp, cookies_bp, marketing_bp, coach_bp,
               exports_bp, billing_bp, retention_bp, requests_bp, dpo_bp):
        app.register_blueprint(bp)


def _register_hooks(app: Flask) -> None:
    from portal.forms import ButtonForm
    from portal.security import apply_security_headers

    app.after_request(apply_security_headers)

    @app.context_processor
    def _layout_context():
        if not has_request_context():  # mails rendered by the worker
            return {"dpo_email": app.config["DPO_EMAIL"]}
        # The language switch returns to this path; never a query string or a link token.
        path = "/" if request.endpoint in {None, "auth.follow_link"} else request.path
        return {"button_form": _button_form, "current_path": path,
                "dpo_email": app.config["DPO_EMAIL"]}

    def _button_form() -> ButtonForm:
        """The layout's CSRF-protected buttons (language, logout, cookie banner) share one
        form per request. formdata=None: they never read the request body (which may be the
        very reason for an error page, e.g. a 413)."""
        form = g.get("layout_button_form")
        if form is None:
            form = g.layout_button_form = ButtonForm(formdata=None)
        return form


def _register_bench_routes(app: Flask) -> None:
    """`make bench-load` only: a bare page through the same hooks as every other page (session,
    CSRF, limiter, security headers), so the benchmark can measure the floor of the stack."""
    def bench_hello():
        return "Hello, world\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    app.add_url_rule("/bench/hello", "bench_hello", bench_hello)


class _RedactTokens(logging.Filter):
    """Keep mailed tokens (single-use links, unsubscribe links) out of access logs."""

    _pattern = re.compile(r"(/l/|/avregistrera/|/coach/inbjudan/)[A-Za-z0-9_.\-]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # gunicorn's access log: one mapping of atoms,
            for key, value in record.args.items():  # changed in place to keep its class
                if isinstance(value, str):
                    record.args[key] = self._pattern.sub(r"\1[redacted]", value)
        elif record.args:
            record.args = tuple(self._pattern.sub(r"\1[redacted]", a) if isinstance(a, str)
                                else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self._pattern.sub(r"\1[redacted]", record.msg)
        return True


def _quiet_secrets_in_logs() -> None:
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactTokens) for f in logger.filters):
            logger.addFilter(_RedactTokens())
