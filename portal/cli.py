"""Maintenance commands: `flask --app portal <command>`."""
from __future__ import annotations

import secrets
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from portal.auth.models import AccessSource, Role, User
from portal.db import db

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
db_cli = AppGroup("db", help="Database migrations (Alembic).")


def alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", current_app.config["DATABASE_URL"].replace("%", "%%"))
    return cfg


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from alembic import command

    url = current_app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from alembic import command

    command.downgrade(alembic_config(), revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a new migration from the models."""
    from alembic import command

    command.revision(alembic_config(), message=message, autogenerate=True)


@click.command("create-account")
@with_appcontext
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.USER.value)
@click.option("--name", default="")
@click.argument("email")
def create_account_cmd(role: str, name: str, email: str) -> None:
    """Create an account and print a single-use link to set its password."""
    from portal.auth.services import create_account, find_user_by_email, link_for
    from portal.forms import ValidEmail

    email = _valid_email(email, ValidEmail)
    if find_user_by_email(email):
        raise click.ClickException(f"Det finns redan ett konto för {email}.")
    user, raw = create_account(email, Role(role), name)
    db.session.commit()
    click.echo(f"Konto skapat ({user.role.value}): {user.email}")
    click.echo(f"Engångslänk för att välja lösenord (giltig i 7 dagar):\n  {link_for(raw)}")


def _valid_email(email: str, validator_cls) -> str:
    class _Field:
        data = email.strip()

    try:
        validator_cls()(None, _Field)
    except Exception as exc:
        raise click.ClickException(f"Ogiltig e-postadress: {exc}") from None
    return _Field.data


DEMO_ACCOUNTS = (
    ("anvandare@demo.cowrite.se", "Dana Demo", Role.USER),
    ("coach@demo.cowrite.se", "Cornelia Coach", Role.COACH),
    ("dso@demo.cowrite.se", "Dag Dataskyddsombud", Role.DPO),
)


@click.command("seed-demo")
@with_appcontext
@click.option("--users", type=click.IntRange(min=100), default=None,
              help="Bulk seed: this many job seekers with texts, coaches, requests (see "
                   "portal/seed.py); needs --credentials.")
@click.option("--credentials", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Bulk seed: JSON file (mode 0600) for the shared password and the known "
                   "accounts.")
@click.option("--seed", "random_seed", type=int, default=1, show_default=True,
              help="Bulk seed: random seed (the same seed gives the same data).")
def seed_demo(users: int | None, credentials: Path | None, random_seed: int) -> None:
    """Create the demo user, coach and DPO once, printing their passwords that one time;
    with --users N, fill the database at production size for benchmarks instead."""
    if users is not None or credentials is not None:
        _seed_at_scale(users, credentials, random_seed)
        return
    from portal import audit
    from portal.auth.passwords import hash_password
    from portal.clock import now

    exists = db.session.scalar(sa.select(sa.func.count()).select_from(User)
                               .where(User.email.in_([a[0] for a in DEMO_ACCOUNTS])))
    if exists:
        click.echo("Demokonton finns redan (lösenorden visades när de skapades).")
        return
    lines = []
    for email, name, role in DEMO_ACCOUNTS:
        password = "-".join(secrets.token_urlsafe(4) for _ in range(3))
        stamp = now()
        user = User(email=email, name=name, role=role, password_hash=hash_password(password),
                    email_verified_at=stamp, password_changed_at=stamp, locale="sv",
                    access_source=AccessSource.STOD_OCH_MATCHNING if role == Role.USER else None,
                    policy_accepted_at=stamp if role == Role.USER else None,
                    policy_version="2026-11" if role == Role.USER else None)
        db.session.add(user)
        db.session.flush()
        audit.record("account.demo_created", subject_id=user.id, role=role.value)
        if role == Role.USER:
            _demo_user_data(user)
        lines.append(f"  {role.value:6} {email:28} {password}")
    db.session.commit()
    click.echo("Demokonton skapade. Spara lösenorden nu; de visas bara den här gången:")
    click.echo("\n".join(lines))


def _seed_at_scale(users: int | None, credentials: Path | None, random_seed: int) -> None:
    from portal.seed import SeedRefused, seed_at_scale

    if users is None or credentials is None:
        raise click.ClickException("--users och --credentials anges tillsammans.")
    click.echo(f"Seedar {users} användare (slumpfrö {random_seed}) i en transaktion …")
    try:
        result = seed_at_scale(users, random_seed, credentials, progress=click.echo)
    except SeedRefused as refused:
        raise click.ClickException(str(refused)) from None
    except Exception:
        click.echo("Seedningen avbröts; inget har sparats.", err=True)
        raise
    for table, count in sorted(result["counts"].items()):
        click.echo(f"  {table:16} {count:>10}")
    click.echo(f"Klart på {result['seconds']:.0f} s. Lösenordet och de kända kontona finns i "
               f"{credentials} (läsbar bara för dig).")


def _demo_user_data(user: User) -> None:
    """Give the demo user something in most categories of the register."""
    from portal.billing.models import Organisation, OrganisationKind, UsageEvent
    from portal.consent.models import ConsentSource, Purpose
    from portal.consent.services import record_consent
    from portal.texts.models import Text, TextKind

    org = Organisation(name="Demo Matchning AB", org_number="5560160680",
                       kind=OrganisationKind.MATCHNINGSFORETAG)
    db.session.add(org)
    db.session.flush()
    user.organisation_id = org.id
    for title, kind, shared in (("Personligt brev till Exempelbolaget", TextKind.PERSONLIGT_BREV,
                                 True), ("Mitt cv", TextKind.CV, False)):
        db.session.add(Text(user_id=user.id, title=title, kind=kind, shared_with_coach=shared,
                            body="Hej!\n\nDet här är en demotext."))
        db.session.add(UsageEvent(user_id=user.id, organisation_id=org.id))
    record_consent(user.id, Purpose.NEWSLETTER, True, ConsentSource.REGISTRATION)
    record_consent(user.id, Purpose.OFFERS, False, ConsentSource.REGISTRATION)


@click.command("purge-unverified")
@with_appcontext
def purge_unverified_cmd() -> None:
    """Delete registrations never confirmed within seven days (the cron job does this hourly)."""
    from portal.retention.tasks import purge_unverified

    click.echo(f"Raderade {purge_unverified()} obekräftade registreringar.")


@click.command("reconcile")
@with_appcontext
def reconcile_cmd() -> None:
    """Enqueue every pending action that has no live job (the cron job does this each minute)."""
    from portal.jobs import reconcile

    click.echo(reconcile())


@click.command("verify-audit")
@with_appcontext
def verify_audit_cmd() -> None:
    """Check the audit log's hash chain from the first event to the last."""
    from portal.audit import verify_chain

    bad = verify_chain()
    if bad is not None:
        raise click.ClickException(f"Granskningsloggen är bruten vid händelse {bad}.")
    click.echo("Granskningsloggens kedja är obruten.")


def register_cli(app) -> None:
    from portal.consent.cli import register_cli as register_marketing_cli
    from portal.retention.cli import register_cli as register_retention_cli

    from portal.requests.dpo_cli import audit_cli

    register_marketing_cli(app)
    register_retention_cli(app)
    app.cli.add_command(audit_cli)
    app.cli.add_command(db_cli)
    for command in (create_account_cmd, seed_demo, purge_unverified_cmd, reconcile_cmd,
                    verify_audit_cmd):
        app.cli.add_command(command)
