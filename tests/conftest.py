"""Test harness: a fresh database per run (PostgreSQL or SQLite) built by the migrations,
each test in a rolled-back transaction, real Redis (db 15, flushed), real SMTP (aiosmtpd)."""
from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

_INSTANCE = Path(tempfile.mkdtemp(prefix="portal-test-"))
os.environ["PORTAL_INSTANCE"] = str(_INSTANCE)
os.environ.pop("PORTAL_ENV", None)

import sqlalchemy as sa  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

import portal.auth.passwords as passwords  # noqa: E402
from portal import create_app  # noqa: E402
from portal.db import db, normalise_url  # noqa: E402

REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_URL = os.environ.get("TEST_DATABASE_URL", "")

# Fast hashing in tests; production parameters are tested in test_passwords.py.
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
passwords._DUMMY_HASH = passwords._hasher.hash("timing-equaliser-not-a-password")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- database -------------------------------------------------------------------------------

def _create_database() -> tuple[str, callable]:
    if PG_URL.startswith("postgres"):
        name = f"portal_test_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.make_url(normalise_url(PG_URL)).set(database=name)
        url_str = url.render_as_string(hide_password=False)

        def drop():
            db.engine.dispose() if db.engine is not None else None
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return url_str, drop
    path = _INSTANCE / "test.db"
    return f"sqlite:///{path}", lambda: None


@pytest.fixture(scope="session")
def database_url():
    url, drop = _create_database()
    from alembic import command

    from portal.cli import alembic_config

    app = create_app({"DATABASE_URL": url, "REDIS_URL": REDIS_TEST_URL})
    with app.app_context():
        command.upgrade(alembic_config(), "head")
    yield url
    drop()


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on loopback collecting every message it receives."""
    from aiosmtpd.controller import Controller

    class Collector:
        def __init__(self):
            self.messages: list = []
            self.lock = threading.Lock()

        async def handle_DATA(self, server, session, envelope):
            from email import message_from_bytes, policy

            msg = message_from_bytes(envelope.content, policy=policy.default)
            with self.lock:
                self.messages.append(msg)
            return "250 OK"

    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def app_config(database_url: str, smtp_server, base_url: str) -> dict:
    """The configuration every test app shares (the in-process one and the live server)."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_TEST_URL,
        "SECRET_KEY": "test-secret-key",
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_server.port,
        "SMTP_SECURITY": "none",
        "BASE_URL": base_url,
        "SERVER_NAME": None,
    }



@pytest.fixture(scope="session")
def app(database_url, smtp_server):
    app = create_app(app_config(database_url, smtp_server, "http://portal.test"))
    _APP["app"] = app
    _register_test_routes(app)
    return app


GUARDED_PATH = "/_test/kanslig"


def _register_test_routes(app) -> None:
    """Routes that exist only in tests: the recent-auth guard as later features will use it."""
    from flask import Blueprint

    from portal.security import recent_auth_required

    bp = Blueprint("test_only", __name__)

    @bp.route(GUARDED_PATH, methods=["GET", "POST"])
    @recent_auth_required
    def sensitive():
        return "känslig åtgärd"

    app.register_blueprint(bp)


# --- no personal data in Redis ---------------------------------------------------------------

_NAMES_USED: set[str] = set()  # every name make_user gave a person in this run
_ADDRESS = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def redis_contents(conn) -> bytes:
    """Every key and value in one Redis database, job payloads decompressed."""
    import zlib

    out = b""
    for key in conn.scan_iter(count=1000):
        out += key + b"\n"
        kind = conn.type(key)
        if kind == b"string":
            out += conn.get(key) or b""
        elif kind == b"hash":
            for field, value in conn.hgetall(key).items():
                out += field + b"=" + value + b"\n"
                if field == b"data" and key.startswith(b"rq:job:"):
                    try:
                        out += zlib.decompress(value)
                    except zlib.error:
                        pass
        elif kind == b"list":
            out += b"\n".join(conn.lrange(key, 0, -1))
        elif kind == b"zset":
            out += b"\n".join(conn.zrange(key, 0, -1))
        elif kind == b"set":
            out += b"\n".join(conn.smembers(key))
        out += b"\n"
    return out


@pytest.fixture(autouse=True)
def _no_personal_data_left_in_redis(request):
    """After every test (so after the whole suite): no key or value in the test Redis holds
    an e-mail address or the name of a person the tests created (ids only)."""
    yield
    import redis

    contents = redis_contents(redis.Redis.from_url(REDIS_TEST_URL))
    found = [m.decode(errors="replace") for m in _ADDRESS.findall(contents)]
    found += [name for name in _NAMES_USED if name.encode() in contents]
    assert not found, f"personal data left in Redis after {request.node.nodeid}: {found[:5]}"


@pytest.fixture(autouse=True)
def _isolation(request, app):
    """Non-browser tests: one outer transaction rolled back at the end; Redis db 15 flushed.

    No app context stays pushed, so each test-client request gets its own (as in production).
    """
    if request.node.get_closest_marker("browser") or request.node.get_closest_marker("faults"):
        yield
        return
    import redis

    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    connection = db.engine.connect()
    outer = connection.begin()
    db.session.remove()
    db.factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        db.session.remove()
        outer.rollback()
        connection.close()
        db.factory.configure(bind=db.engine, join_transaction_mode="conditional_savepoint")


@pytest.fixture
def ctx(app):
    """An application context for tests that call services directly."""
    with app.app_context() as context:
        yield context


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def outbox(smtp_server):
    """Messages the SMTP server received during this test."""
    smtp_server.handler.messages.clear()
    return smtp_server.handler.messages


# --- helpers --------------------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_from(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post_form(client, path: str, data: dict, *, form_path: str | None = None, **kwargs):
    token = csrf_from(client, form_path or path)
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


def run_jobs() -> int:
    """Run every queued job in this process (same transaction), like a worker would."""
    from flask import current_app
    from rq import Queue, SimpleWorker

    from portal.jobs import get_connection

    with current_app.app_context() if _has_app() else _app_context():
        conn = get_connection()
        queue = Queue("default", connection=conn)
        count = len(queue)
        from worker import NoPersonalDataMixin

        worker_class = type("TestWorker", (NoPersonalDataMixin, SimpleWorker), {})
        worker_class([queue], connection=conn).work(burst=True, logging_level="WARNING")
    return count


_APP = {}


def _has_app() -> bool:
    from flask import has_app_context

    return has_app_context()


def _app_context():
    return _APP["app"].app_context()


def make_user(email: str = "anna@example.se", password: str = "ett-bra-losenord-42",
              name: str = "Anna Andersson", role: str = "user", verified: bool = True):
    from portal.auth.models import AccessSource, Role, User
    from portal.auth.passwords import hash_password
    from portal.clock import now

    _NAMES_USED.add(name)
    user = User(email=email, name=name, role=Role(role), password_hash=hash_password(password),
                email_verified_at=now() if verified else None, locale="sv",
                access_source=AccessSource.STOD_OCH_MATCHNING if role == "user" else None)
    db.session.add(user)
    db.session.commit()
    return user


def login(client, email: str = "anna@example.se", password: str = "ett-bra-losenord-42"):
    return post_form(client, "/logga-in", {"email": email, "password": password})


def links_in(message) -> list[str]:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return re.findall(r"https?://\S+", body)


TEST_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def enrol_totp(email: str, secret: str = TEST_TOTP_SECRET) -> str:
    """Give a DPO an authenticator directly in the database (if they have none); returns the
    secret their codes come from."""
    from portal.auth.services import find_user_by_email
    from portal.clock import now
    from portal.crypto import keyring
    from portal.requests import totp

    with current_or_new_app_context():
        user = find_user_by_email(email)
        if totp.is_enrolled(user):
            return totp.stored_secret(user)
        user.totp_secret = keyring().encrypt(secret.encode(), f"totp:{user.id}".encode())
        user.totp_enrolled_at, user.totp_last_step = now(), None
        db.session.commit()
        return secret


def current_or_new_app_context():
    from contextlib import nullcontext

    return nullcontext() if _has_app() else _app_context()


def totp_code(secret: str, step: int | None = None) -> str:
    import pyotp

    from portal.clock import now

    step = step if step is not None else int(now().timestamp()) // 30
    return pyotp.TOTP(secret).at(step * 30)


def login_dpo(client, email: str = "dso@cowrite.se", password: str = "ett-bra-losenord-42"):
    """Log a DPO in with password and a valid TOTP code (enrolling them first if needed)."""
    from portal.auth.services import find_user_by_email
    from portal.clock import now

    secret = enrol_totp(email)
    first = login(client, email, password)
    if first.status_code != 302 or "/logga-in/kod" not in first.headers.get("Location", ""):
        return first
    with current_or_new_app_context():
        user = find_user_by_email(email)
        step = int(now().timestamp()) // 30
        if user.totp_last_step is not None and user.totp_last_step >= step:
            user.totp_last_step = None  # a second login within the same 30 seconds
            db.session.commit()
    return post_form(client, "/logga-in/kod", {"code": totp_code(secret, step)})


@pytest.fixture
def query_counter(app):
    """Counts the SQL statements of one test-client request (tests/querycount.py)."""
    from tests.querycount import QueryCounter

    return QueryCounter(db.engine)
