"""Configuration, maintenance commands, audit chain, encryption keys and translations."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po

from portal.audit import AuditEvent, record, verify_chain
from portal.auth.models import Role, User
from portal.config import ConfigError, load_config
from portal.crypto import DataKeyError, Keyring
from portal.db import db
from tests.conftest import links_in, make_user, post_form

ROOT = Path(__file__).resolve().parent.parent


def test_production_refuses_to_start_naming_what_is_missing(monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    for name in ("SECRET_KEY", "DATA_KEYS", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://r/0")
    with pytest.raises(ConfigError) as info:
        load_config()
    message = str(info.value)
    assert "SECRET_KEY" in message and "DATA_KEYS" in message and "DATABASE_URL" in message
    assert "REDIS_URL" not in message


def test_production_process_exits_with_the_message():
    env = {"PORTAL_ENV": "production", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", "from portal import create_app; create_app()"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY, DATA_KEYS, DATABASE_URL, REDIS_URL" in result.stderr


def test_development_generates_private_keys_once(tmp_path, monkeypatch):
    import portal.config as config

    monkeypatch.setattr(config, "INSTANCE", tmp_path)
    for name in ("SECRET_KEY", "DATA_KEYS", "PORTAL_ENV"):
        monkeypatch.delenv(name, raising=False)
    first, second = load_config(), load_config()
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) == 64
    assert first["DATA_KEYS"] == second["DATA_KEYS"]
    for name in ("secret_key", "data_key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    Keyring(first["DATA_KEYS"])  # a valid key


def test_keyring_encrypts_binds_context_and_rotates():
    old = Keyring("k1:" + "A" * 43)
    blob = old.encrypt(b"personnummer", b"id-copy:1")
    assert b"personnummer" not in blob
    rotated = Keyring("k2:" + "B" * 43 + ",k1:" + "A" * 43)
    assert rotated.decrypt(blob, b"id-copy:1") == b"personnummer"
    assert rotated.key_id_of(rotated.encrypt(b"x", b"c")) == "k2"
    with pytest.raises(Exception):
        rotated.decrypt(blob, b"id-copy:2")  # moved to another row: refused
    with pytest.raises(DataKeyError):
        Keyring("k2:" + "B" * 43).decrypt(blob, b"id-copy:1")
    with pytest.raises(DataKeyError):
        Keyring("k1:short")


def test_audit_chain_verifies_and_detects_tampering(ctx):
    user = make_user()
    for action in ("a", "b", "c"):
        record(f"test.{action}", actor_id=user.id, subject_id=user.id, note=action)
    db.session.flush()
    assert verify_chain() is None
    victim = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "test.b")).one()
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.id == victim.id)
                       .values(details={"note": "changed"}))
    db.session.expire_all()
    assert verify_chain() == victim.id


def test_create_account_cli_prints_a_working_single_use_link(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-account", "--role", "dpo", "Ny.DSO@Exempel.se"])
    assert result.exit_code == 0, result.output
    (link,) = re.findall(r"https?://\S+", result.output)
    user = db.session.scalars(sa.select(User).where(User.email == "ny.dso@exempel.se")).one()
    assert user.role == Role.DPO and user.password_hash is None
    assert client.get(link.removeprefix("http://portal.test")).status_code == 302
    response = post_form(client, "/nytt-losenord", {"password": "dso-lampa-flod-3",
                                                    "password_confirm": "dso-lampa-flod-3"})
    assert response.status_code == 302
    again = runner.invoke(args=["create-account", "--role", "dpo", "ny.dso@exempel.se"])
    assert again.exit_code != 0 and "finns redan" in again.output
    bad = runner.invoke(args=["create-account", "inte en adress"])
    assert bad.exit_code != 0 and "Ogiltig e-postadress" in bad.output
    assert client.get(link.removeprefix("http://portal.test")).status_code == 410


def test_seed_demo_creates_three_roles_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and first.output.count("demo.cowrite.se") == 3
    roles = set(db.session.scalars(sa.select(User.role)).all())
    assert roles == {Role.USER, Role.COACH, Role.DPO}
    second = runner.invoke(args=["seed-demo"])
    assert "finns redan" in second.output and "demo.cowrite.se" not in second.output


def test_password_reset_flow_via_mail(client, outbox):
    from tests.conftest import login, run_jobs

    make_user()
    post_form(client, "/glomt-losenord", {"email": "anna@example.se"})
    run_jobs()
    (link,) = [u for u in links_in(outbox[0]) if "/l/" in u]
    client.get(link.removeprefix("http://portal.test"))
    weak = post_form(client, "/nytt-losenord", {"password": "qwerty123",
                                                "password_confirm": "qwerty123"})
    assert "för vanligt" in weak.get_data(as_text=True)
    done = post_form(client, "/nytt-losenord", {"password": "solros-hav-tak-8",
                                                "password_confirm": "solros-hav-tak-8"})
    assert done.status_code == 302
    assert login(client, password="ett-bra-losenord-42").status_code == 200
    assert login(client, password="solros-hav-tak-8").status_code == 302
    run_jobs()
    assert "bytts" in outbox[-1]["Subject"]  # the "your password was changed" notice


# --- translations ---------------------------------------------------------------------------

def _catalog(lang: str):
    with open(ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=lang)


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_catalogue_is_complete_and_not_fuzzy(lang):
    catalog = _catalog(lang)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if "fuzzy" in message.flags or not all(strings):
            problems.append(message.id)
    assert problems == []
    assert len(catalog) > 150


def test_catalogue_covers_every_message_in_the_source(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "translations/babel.cfg", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot),
                    "."], cwd=ROOT, check=True, capture_output=True)
    with open(pot, "rb") as fh:
        wanted = {m.id for m in read_po(fh) if m.id}
    have = {m.id for m in _catalog("sv") if m.id}
    assert wanted - have == set(), "run `make translations` and translate the new messages"


def test_swedish_placeholders_match_the_source():
    for message in _catalog("sv"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        names = set(re.findall(r"%\((\w+)\)", ids[0]))
        for translated in strings:
            assert set(re.findall(r"%\((\w+)\)", translated)) == names, message.id


def test_language_follows_account_then_cookie_then_browser(app, client):
    make_user()
    assert 'lang="sv"' in client.get("/").get_data(as_text=True)
    english = app.test_client()
    assert 'lang="en"' in english.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    response = post_form(client, "/sprak", {"lang": "en", "next": "/logga-in"}, form_path="/")
    assert response.headers["Location"] == "/logga-in"
    assert 'lang="en"' in client.get("/logga-in").get_data(as_text=True)
    from tests.conftest import login

    login(client)  # the account says sv: it wins over the cookie
    assert 'lang="sv"' in client.get("/konto/").get_data(as_text=True)
    post_form(client, "/sprak", {"lang": "en", "next": "/konto/"}, form_path="/konto/")
    db.session.expire_all()
    assert db.session.scalars(sa.select(User.locale)).one() == "en"


def test_no_obfuscated_addresses_or_unfinished_markers_in_the_product():
    offenders = []
    for path in [*ROOT.glob("portal/**/*.py"), *ROOT.glob("templates/**/*"), ROOT / "README.md"]:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if "email protected" in text or re.search(r"\b(TODO|FIXME|XXX)\b", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
