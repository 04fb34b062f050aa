"""Invoice bases: usage per organisation and calendar month, counted in SQL; CSV and PDF.

A month is a Swedish calendar month (Europe/Stockholm), so an event at 00:30 on the 1st,
Swedish time, belongs to that month even though it is still the previous day in UTC.

Two helpers here are meant for reuse: `pseudonym_for` (erasure shows an erased user under it)
and `static_only_fetcher`/`render_pdf` (every PDF: WeasyPrint may read files under static/
and nothing else).
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from flask import current_app, render_template
from flask_babel import gettext as _

from portal import audit
from portal.auth.models import AccountStatus, User
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.clock import STOCKHOLM, now
from portal.config import ROOT
from portal.db import db
from portal.validation import format_org_number
from portal.exports.render import render_pdf, safe_url_fetcher  # noqa: F401 (re-used)

BILLABLE_KINDS = ("text_created",)
STATIC_DIR = ROOT / "static"  # (the fetcher itself lives in portal.exports.render)
_MONTH_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- months ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Month:
    """A Swedish calendar month: [start, end) as aware UTC datetimes."""

    year: int
    month: int

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=STOCKHOLM)

    @property
    def start(self) -> datetime:
        return self.first_day.astimezone(timezone.utc)

    @property
    def end(self) -> datetime:
        return (self.first_day + relativedelta(months=1)).astimezone(timezone.utc)


def parse_month(value: str | None) -> Month | None:
    """`YYYY-MM` (years 2000–2100) as a Month, or None if it is anything else."""
    match = _MONTH_RE.fullmatch(value or "")
    if match is None or not 2000 <= int(match[1]) <= 2100:
        return None
    return Month(int(match[1]), int(match[2]))


def previous_month() -> Month:
    """The last complete Swedish calendar month (the one usually invoiced)."""
    day = now().astimezone(STOCKHOLM).replace(day=1) - relativedelta(months=1)
    return Month(day.year, day.month)


# --- the numbers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class OrganisationTotal:
    organisation_id: int
    name: str
    org_number: str | None
    kind: OrganisationKind
    users: int
    events: int


def _in_month(month: Month):
    return sa.and_(UsageEvent.at >= month.start, UsageEvent.at < month.end,
                   UsageEvent.kind.in_(BILLABLE_KINDS))


def organisation_totals(month: Month) -> list[OrganisationTotal]:
    """One row per organisation with billable use in the month (GROUP BY in the database)."""
    rows = db.session.execute(
        sa.select(Organisation.id, Organisation.name, Organisation.org_number,
                  Organisation.kind, sa.func.count(sa.distinct(UsageEvent.user_id)),
                  sa.func.count(UsageEvent.id))
        .join(UsageEvent, UsageEvent.organisation_id == Organisation.id)
        .where(_in_month(month))
        .group_by(Organisation.id, Organisation.name, Organisation.org_number,
                  Organisation.kind)
        .order_by(Organisation.name, Organisation.id))
    return [OrganisationTotal(*row) for row in rows]


def unattributed_count(month: Month) -> int:
    """Billable uses in the month that no organisation pays for (self-paying users)."""
    return db.session.scalar(sa.select(sa.func.count(UsageEvent.id))
                             .where(_in_month(month), UsageEvent.organisation_id.is_(None)))


@dataclass(frozen=True)
class BasisRow:
    user_id: int
    label: str
    events: int


@dataclass(frozen=True)
class InvoiceBasis:
    organisation: Organisation
    month: Month
    rows: list[BasisRow]
    total: int


def pseudonym_for(user_id: int) -> str:
    """The stable pseudonym of a user, e.g. "Pseudonym 3F9A2C1B": the first 32 bits of
    HMAC-SHA256(SECRET_KEY, user id). It cannot be turned back into the id without the key;
    the same word is used in Swedish and English. (Changing SECRET_KEY changes pseudonyms.)"""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    digest = hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()
    return f"Pseudonym {digest[:8].upper()}"


def invoice_basis(organisation: Organisation, month: Month) -> InvoiceBasis:
    """The users the organisation pays for in the month, with their counts (SQL GROUP BY);
    an erased (pseudonymised) user appears under their pseudonym, never their name."""
    rows = db.session.execute(
        sa.select(User.id, User.name, User.status, sa.func.count(UsageEvent.id))
        .join(User, User.id == UsageEvent.user_id)
        .where(_in_month(month), UsageEvent.organisation_id == organisation.id)
        .group_by(User.id, User.name, User.status))
    basis_rows = [BasisRow(user_id, pseudonym_for(user_id)
                           if status == AccountStatus.PSEUDONYMISED else name, count)
                  for user_id, name, status, count in rows]
    basis_rows.sort(key=lambda row: (row.label.casefold(), row.user_id))
    total = db.session.scalar(sa.select(sa.func.count(UsageEvent.id)).where(
        _in_month(month), UsageEvent.organisation_id == organisation.id))
    return InvoiceBasis(organisation, month, basis_rows, total or 0)


def record_download(actor_id: int, basis: InvoiceBasis, fmt: str) -> None:
    """Audit that an invoice basis (names of users) left the portal."""
    audit.record("billing.basis_downloaded", actor_id=actor_id,
                 organisation_id=basis.organisation.id, month=basis.month.key, format=fmt,
                 rows=len(basis.rows))


# --- CSV ------------------------------------------------------------------------------------

def _cell(value) -> str:
    """A spreadsheet cell that is never run as a formula (CSV injection)."""
    text = str(value)
    return "'" + text if text.startswith(_CSV_FORMULA_START) else text


def basis_csv(basis: InvoiceBasis) -> bytes:
    """UTF-8 with BOM, semicolons and CRLF (what Swedish Excel opens directly)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    org = basis.organisation
    fixed = [basis.month.key, _cell(org.name), format_org_number(org.org_number)]
    writer.writerow([_("Month"), _("Organisation"), _("Organisation number"), _("User"),
                     _("Texts created")])
    for row in basis.rows:
        writer.writerow([*fixed, _cell(row.label), row.events])
    writer.writerow([*fixed, _("Total"), basis.total])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- PDF ------------------------------------------------------------------------------------

def static_only_fetcher():
    """The PDF URL fetcher shared with exports: files under static/ only."""
    return safe_url_fetcher()


def page_counter_css(label: str) -> str:
    """A CSS `content` value from a translated label with %(page)s and %(pages)s in it,
    e.g. "Sida %(page)s av %(pages)s" -> "Sida " counter(page) " av " counter(pages)."""
    parts = re.split(r"(%\(pages?\)s)", label)
    out = []
    for part in parts:
        if part == "%(page)s":
            out.append("counter(page)")
        elif part == "%(pages)s":
            out.append("counter(pages)")
        elif part:
            out.append('"' + re.sub(r'([\\"])', r"\\\1", part).replace("\n", " ") + '"')
    return " ".join(out) or '""'


def basis_pdf(basis: InvoiceBasis) -> bytes:
    """The invoice basis as a PDF (organisation, month, rows, total, page numbers)."""
    html = render_template("pdf/invoice_basis.html", basis=basis, generated_at=now(),
                           page_counter=page_counter_css(_("Page %(page)s of %(pages)s")))
    return render_pdf(html)
