"""DPO maintenance commands: `flask --app portal audit verify`."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from portal.audit import verify_chain

audit_cli = AppGroup("audit", help="The hash-chained audit log.")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check every audit event's hash; exit 1 with the first broken event's id."""
    broken = verify_chain()
    if broken is not None:
        click.echo(f"audit chain broken at event {broken}", err=True)
        sys.exit(1)
    click.echo("audit chain verified")
