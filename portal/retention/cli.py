"""Retention commands for operators: `flask --app portal erase-account EMAIL`, and running
the daily inactivity sweep by hand (`flask --app portal inactivity-sweep`)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.db import db

STEP_NAMES = {"approved": "godkänd, väntar på avidentifiering",
              "pseudonymised": "avidentifierad",
              "invoicing_closed": "faktureringen stängd",
              "deleted": "raderad"}


@click.command("erase-account")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Fråga inte om bekräftelse.")
@with_appcontext
def erase_account_cmd(email: str, yes: bool) -> None:
    """Start erasing an account on the operator's decision (reason: admin), e.g. for a
    request that arrived by post; requests filed in the portal go through the DPO console."""
    from portal.auth.services import find_user_by_email
    from portal.retention.models import ErasureReason
    from portal.retention.services import DELETION_DAYS, INVOICING_DAYS, start_erasure

    user = find_user_by_email(email.strip())
    if user is None:
        raise click.ClickException("Det finns inget konto med den e-postadressen. "
                                   "Inget har ändrats.")
    if not yes:
        click.confirm(f"Radera kontot {user.id} ({user.role.value})? Det går inte att ångra",
                      abort=True)
    case = start_erasure(user.id, ErasureReason.ADMIN)
    db.session.commit()
    click.echo(f"Raderingsärende {case.id} för {case.pseudonym}: "
               f"{STEP_NAMES[case.step.value]}.")
    click.echo(f"Avidentifiering nu, faktureringen stängs {_day(case.approved_at + INVOICING_DAYS)}"
               f", allt raderas {_day(case.approved_at + DELETION_DAYS)}.")
    click.echo("Arbetaren kör steget inom en minut (om kön inte nås just nu tar avstämningen "
               "över när den nås igen).")


def _day(value) -> str:
    from portal.clock import STOCKHOLM

    return value.astimezone(STOCKHOLM).strftime("%Y-%m-%d")


@click.command("inactivity-sweep")
@with_appcontext
def inactivity_sweep_cmd() -> None:
    """Run the daily inactivity sweep now (warnings due and erasures started)."""
    from portal.retention.tasks import inactivity_sweep

    result = inactivity_sweep()
    click.echo(f"{result['warnings']} konton ska varnas och {result['erasures']} konton "
               "raderas. Arbetet är köat (utan kö görs det direkt).")


def register_cli(app) -> None:
    """Add the retention commands to `flask --app portal`."""
    app.cli.add_command(erase_account_cmd)
    app.cli.add_command(inactivity_sweep_cmd)
