"""Unbound extensions; `create_app` binds them."""
from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(
    key_func=get_remote_address,
    in_memory_fallback_enabled=True,
    strategy="fixed-window",
    headers_enabled=False,
)


def client_ip() -> str:
    """The client address (ProxyFix has already applied TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"
