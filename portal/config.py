"""Configuration from the environment; development needs none, production fails fast."""
from __future__ import annotations

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("PORTAL_INSTANCE", ROOT / "instance"))

REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATA_KEYS", "DATABASE_URL", "REDIS_URL", "SIGNING_KEY")


class ConfigError(RuntimeError):
    """Raised when production configuration is incomplete."""


def _instance_secret(name: str, make) -> str:
    """Read a development secret from instance/, creating it (mode 0600) on first start."""
    INSTANCE.mkdir(parents=True, exist_ok=True)
    path = INSTANCE / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def _new_data_key() -> str:
    return "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment (plus test overrides)."""
    env = os.environ
    production = env.get("PORTAL_ENV", "development") == "production"
    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name)]
        if missing:
            raise ConfigError(
                "PORTAL_ENV=production needs these environment variables: " + ", ".join(missing)
            )
    secret = env.get("SECRET_KEY") or _instance_secret("secret_key", lambda: secrets.token_hex(32))
    data_keys = env.get("DATA_KEYS") or _instance_secret("data_key", _new_data_key)
    from portal.requests.signing import new_private_key_b64

    signing_key = env.get("SIGNING_KEY") or _instance_secret("signing_key", new_private_key_b64)
    secure_cookies = _bool(env.get("SESSION_COOKIE_SECURE"), production)

    cfg = {
        "PORTAL_ENV": "production" if production else "development",
        "SECRET_KEY": secret,
        "DATA_KEYS": data_keys,
        "SIGNING_KEY": signing_key,
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'portal.db'}",
        "REDIS_URL": env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "BASE_URL": env.get("PORTAL_BASE_URL", f"http://127.0.0.1:{env.get('PORT', '5000')}"),
        # Sessions: browser-session cookie; the server-side record decides validity.
        "SESSION_COOKIE_NAME": "__Host-portal" if secure_cookies else "portal_session",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_IDLE_TIMEOUT": timedelta(hours=2),
        "SESSION_ABSOLUTE_TIMEOUT": timedelta(hours=12),
        "RECENT_AUTH_WINDOW": timedelta(minutes=10),
        "LANG_COOKIE_SECURE": secure_cookies,
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead of a clock
        "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 256 * 1024,
        "MAX_FORM_PARTS": 200,
        "BABEL_DEFAULT_LOCALE": "sv",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Stockholm",
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "translations"),
        "LANGUAGES": ("sv", "en"),
        "MAIL_BACKEND": env.get("MAIL_BACKEND", "smtp" if production else "file"),
        "MAIL_FROM": env.get("MAIL_FROM", "Cowrite Integritetsportalen <noreply@cowrite.se>"),
        "MAIL_OUTBOX": env.get("MAIL_OUTBOX", str(INSTANCE / "outbox")),
        "SMTP_HOST": env.get("SMTP_HOST", "127.0.0.1"),
        "SMTP_PORT": int(env.get("SMTP_PORT", "25")),
        "SMTP_SECURITY": env.get("SMTP_SECURITY", "starttls" if production else "none"),
        "SMTP_USERNAME": env.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        "SMTP_TIMEOUT": float(env.get("SMTP_TIMEOUT", "20")),
        "DPO_EMAIL": env.get("DPO_EMAIL", "dataskyddsombud@cowrite.se"),
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        "LOGIN_LIMIT_PER_ACCOUNT": env.get("LOGIN_LIMIT_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_LIMIT_PER_IP": env.get("LOGIN_LIMIT_PER_IP", "50 per 15 minutes"),
        "UNVERIFIED_ACCOUNT_TTL": timedelta(days=7),
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0")),
    }
    if overrides:
        cfg.update(overrides)
    return cfg
