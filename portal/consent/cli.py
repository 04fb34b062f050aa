"""Marketing commands: `flask --app portal send-newsletter TEMPLATE [--purpose ...]`."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.consent.models import MARKETING_PURPOSES, Purpose

PURPOSE_NAMES = {Purpose.NEWSLETTER: "nyhetsbrevet", Purpose.OFFERS: "erbjudanden"}
_REFUSALS = {
    "not_marketing": "Mallen {t!r} är inte ett marknadsföringsutskick. Bara mallar som heter "
                     "newsletter_* eller offers_* i templates/email/ kan skickas så här.",
    "wrong_purpose": "Mallen {t!r} hör inte till {p}. Mallar som heter newsletter_* skickas "
                     "till dem som vill ha nyhetsbrevet, offers_* till dem som vill ha "
                     "erbjudanden.",
    "missing": "Mallen {t!r} finns inte. Det behövs tre filer i templates/email/: "
               "{t}.subject.txt, {t}.txt och {t}.html.",
}


@click.command("send-newsletter")
@click.argument("template")
@click.option("--purpose", type=click.Choice([p.value for p in MARKETING_PURPOSES]),
              default=None, help="newsletter eller offers (standard: efter mallens namn).")
@with_appcontext
def send_newsletter_cmd(template: str, purpose: str | None) -> None:
    """Queue a marketing mailing to everyone who currently wants it; print how many."""
    from portal.consent.marketing_services import (MailingTemplateError, purpose_of_template,
                                                   send_mailing)

    chosen = Purpose(purpose) if purpose else purpose_of_template(template) or Purpose.NEWSLETTER
    try:
        count = send_mailing(template, chosen)
    except MailingTemplateError as exc:
        raise click.ClickException(
            _REFUSALS[exc.code].format(t=template, p=PURPOSE_NAMES[chosen])) from None
    click.echo(f"{count} utskick av {template} har lagts i kön ({PURPOSE_NAMES[chosen]}).")


def register_cli(app) -> None:
    """Add the marketing commands to `flask --app portal`."""
    app.cli.add_command(send_newsletter_cmd)
