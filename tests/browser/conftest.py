"""Browser tests: a live server on loopback, a real RQ worker, real Chromium, axe-core.

Browser tests are marked `browser`, so the root `_isolation` fixture does not wrap them in a
rolled-back transaction: they write real, committed rows. `_clean_database` below empties every
table after each test.
"""
from __future__ import annotations

from contextlib import contextmanager

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from tests.conftest import REDIS_TEST_URL, app_config, free_port, links_in, make_user

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PASSWORD = "ett-bra-losenord-42"

# Visible Swedish text (translations/sv/LC_MESSAGES/messages.po), matched exactly so that
# "Logga ut" never matches "Logga ut överallt".
LOG_IN = "Logga in"
LOG_OUT = "Logga ut"
CREATE_ACCOUNT = "Skapa konto"
NAME_LABEL = "För- och efternamn"
EMAIL_LABEL = "E-postadress"
PASSWORD_LABEL = "Lösenord"
NEW_PASSWORD_LABEL = "Nytt lösenord"
REPEAT_LABEL = "Upprepa lösenordet"


# --- the live server ------------------------------------------------------------------------

@dataclass
class LiveServer:
    url: str
    app: object
    port: int


@pytest.fixture(scope="package")
def live_server(database_url, smtp_server):
    """The app served by werkzeug in a daemon thread on a free loopback port."""
    from werkzeug.serving import make_server

    from portal import create_app

    _require_compiled_catalogues()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(app_config(database_url, smtp_server, url))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=url, app=app, port=port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _require_compiled_catalogues() -> None:
    """The tests read Swedish text: without a compiled catalogue every page is in English."""
    for lang in ("sv", "en"):
        po = ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po"
        mo = po.with_suffix(".mo")
        if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
            pytest.fail(f"{mo.relative_to(ROOT)} is missing or older than its .po: run "
                        "`pybabel compile -f -d translations` (make test does it)")


# --- the worker -----------------------------------------------------------------------------

@pytest.fixture(scope="package")
def worker(database_url, smtp_server, live_server):
    """A real `python worker.py` process delivering mail through the test SMTP server."""
    from rq import Worker

    conn = redis.Redis.from_url(REDIS_TEST_URL)
    conn.flushdb()
    instance = Path(os.environ["PORTAL_INSTANCE"])
    log_path = instance / f"worker-{uuid.uuid4().hex[:6]}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_TEST_URL,
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_SECURITY": "none",
        "PORTAL_BASE_URL": live_server.url,
        "SECRET_KEY": "test-secret-key",
        "PORTAL_INSTANCE": os.environ["PORTAL_INSTANCE"],
    }
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "worker.py"], cwd=str(ROOT), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"worker exited with {proc.returncode}:\n{log_path.read_text()}")
            if any(w.pid == proc.pid for w in Worker.all(connection=conn)):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"worker not ready within 30 s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()
        conn.close()


# --- the browser ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                          headless=True)
    yield browser
    browser.close()


@contextmanager
def open_page(browser, live_server, expected_console=None):
    """A fresh browser context (its own cookies), preferring Swedish.

    Script errors and console errors (a Content-Security-Policy violation, a missing asset)
    fail the test; console lines matching `expected_console` (Chromium logs one for each
    expected 4xx page) do not.
    """
    expected_console = expected_console or _EXPECTED_CONSOLE
    context = browser.new_context(locale="sv-SE", base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and not expected_console.search(msg.text) else None)
    try:
        yield page
    finally:
        context.close()
    assert not problems, "browser reported errors:\n" + "\n".join(problems)


@pytest.fixture
def page(browser, live_server):
    """The test's browser page (see open_page)."""
    with open_page(browser, live_server) as page:
        yield page


_EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status "
                               r"of (404|410)\b")


# --- isolation ------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _clean_database(request, live_server):
    """After each browser test: let queued mail go out, then delete every row."""
    yield
    import portal.models  # noqa: F401  (every table in the metadata)
    from portal.db import Base, db
    from portal.mail.models import MailMessage, MailStatus

    if "worker" in request.fixturenames:
        # Mail queued at the end of a test (e.g. "password changed") is sent before its rows go.
        deadline = time.monotonic() + 10
        with db.engine.connect() as conn:
            while time.monotonic() < deadline:
                pending = conn.scalar(sa.select(sa.func.count()).select_from(MailMessage)
                                      .where(MailMessage.status == MailStatus.PENDING))
                conn.rollback()
                if not pending:
                    break
                time.sleep(0.1)
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


# --- helpers --------------------------------------------------------------------------------

def unique_email(prefix: str = "ny") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@exempel.se"


def create_user(live_server, email: str | None = None, password: str = PASSWORD,
                name: str = "Anna Andersson", verified: bool = True):
    """A user committed to the live server's database (the make_user pattern)."""
    from portal.db import db

    email = email or unique_email("anna")
    with live_server.app.app_context():
        user = make_user(email=email, password=password, name=name, verified=verified)
        user_id = user.id
        db.session.remove()
    return email, user_id


def wait_for_mail(smtp_server, to_addr: str, subject_contains=None, timeout: float = 20):
    """The first message to `to_addr` (whose subject matches, if given) the SMTP server got.

    `subject_contains` is a substring or a compiled regular expression. Returns only once the
    worker has also committed the delivery: on SQLite a request whose transaction read before
    the worker's commit and writes after it fails at once with "database is locked" (the
    deferred BEGIN in portal/db.py; busy_timeout does not apply to that case), and no person
    follows a link within milliseconds of its arrival.
    """
    def matches(msg) -> bool:
        if to_addr.lower() not in str(msg["To"]).lower():
            return False
        if subject_contains is None:
            return True
        subject = str(msg["Subject"])
        if isinstance(subject_contains, re.Pattern):
            return subject_contains.search(subject) is not None
        return subject_contains in subject

    deadline = time.monotonic() + timeout
    while True:
        with smtp_server.handler.lock:
            found = [m for m in smtp_server.handler.messages if matches(m)]
        if found:
            _wait_until_delivery_recorded(to_addr, deadline)
            return found[0]
        if time.monotonic() > deadline:
            with smtp_server.handler.lock:
                seen = [(str(m["To"]), str(m["Subject"])) for m in smtp_server.handler.messages]
            raise AssertionError(f"no mail to {to_addr} (subject {subject_contains!r}) within "
                                 f"{timeout} s; received: {seen}")
        time.sleep(0.1)


def _wait_until_delivery_recorded(to_addr: str, deadline: float) -> None:
    from portal.db import db
    from portal.mail.models import MailMessage, MailStatus

    query = (sa.select(sa.func.count()).select_from(MailMessage)
             .where(MailMessage.to_addr == to_addr.lower(),
                    MailMessage.status == MailStatus.PENDING))
    with db.engine.connect() as conn:
        while conn.scalar(query):
            conn.rollback()
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not record the delivery to {to_addr}")
            time.sleep(0.05)


def mailed_link(message) -> str:
    """The single-use /l/<token> link in a message."""
    links = [link for link in links_in(message) if "/l/" in link]
    assert links, f"no /l/ link in the message: {links_in(message)}"
    return links[0]


def check_axe(page) -> None:
    """Run axe-core (WCAG 2.1 A and AA) on the page; fail with every violation listed."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS},
                                       "resultTypes": ["violations"]})
    violations = results.response["violations"]
    if violations:
        lines = [f"{len(violations)} axe violation(s) on {page.url}:"]
        for v in violations:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v.get('helpUrl', '')}]")
            for node in v["nodes"]:
                summary = " ".join(line.strip() for line in
                                   (node.get("failureSummary") or "").splitlines()[1:])
                lines.append(f"    {', '.join(map(str, node['target']))}: {summary}")
        raise AssertionError("\n".join(lines))


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login_in_browser(page, email: str, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto("/logga-in")
    page.get_by_label(EMAIL_LABEL, exact=True).fill(email)
    page.get_by_label(PASSWORD_LABEL, exact=True).fill(password)
    page.get_by_role("main").get_by_role("button", name=LOG_IN, exact=True).click()
    expect(page).to_have_url(re.compile(r"/(konto/|mina-uppgifter)$"))


def login_dpo_in_browser(page, email: str, secret: str, on_code_page=None) -> None:
    """Password, then the TOTP code (the DPO is already enrolled); lands on the queue.
    `on_code_page(page)` runs on the code page (e.g. an axe check)."""
    from playwright.sync_api import expect

    from tests.conftest import totp_code

    page.goto("/logga-in")
    page.get_by_label("E-postadress", exact=True).fill(email)
    page.get_by_label("Lösenord", exact=True).fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Logga in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/logga-in/kod$"))
    if on_code_page is not None:
        on_code_page(page)
    page.get_by_label("Kod från din autentiseringsapp", exact=True).fill(totp_code(secret))
    page.get_by_role("main").get_by_role("button", name="Logga in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/dso/begaranden$"))
