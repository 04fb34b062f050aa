"""Building and queueing messages from the templates in templates/email/."""
from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import current_app, render_template
from flask_babel import force_locale

from portal import jobs
from portal.clock import now
from portal.db import db
from portal.mail.models import MailMessage, MailStatus

RETRY_INTERVALS = (30, 120, 600, 1800, 3600)


def queue_mail(template: str, *, to_addr: str, to_name: str = "", locale: str | None = None,
               user_id: int | None = None, headers: dict | None = None,
               attachment: tuple[int, str] | None = None, **context) -> MailMessage:
    """Render `email/<template>.{txt,html}` in the recipient's language and queue it."""
    locale = locale or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        subject = render_template(f"email/{template}.subject.txt", **context).strip()
        text = render_template(f"email/{template}.txt", **context)
        html = render_template(f"email/{template}.html", subject=subject, **context)
    msg = MailMessage(user_id=user_id, template=template, to_addr=to_addr, to_name=to_name,
                      subject=" ".join(subject.split()), body_text=text, body_html=html,
                      headers=headers or {}, status=MailStatus.PENDING,
                      attachment_blob_id=attachment[0] if attachment else None,
                      attachment_name=attachment[1] if attachment else None)
    db.session.add(msg)
    db.session.flush()
    jobs.enqueue_after_commit(db.session, "portal.mail.tasks.deliver", msg.id,
                              job_id=f"mail-{msg.id}", retry_intervals=RETRY_INTERVALS)
    return msg


class VerbatimHeader(str):
    """A header written exactly as given: the standard library would RFC 2047-encode a long,
    space-less URL (List-Unsubscribe), which mail clients then cannot read."""

    def __new__(cls, name: str, value: str):
        if any(ch in value for ch in "\r\n") or not value.isascii() or len(value) > 990:
            raise ValueError(f"header {name} must be one line of ASCII")
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def build_message(row: MailMessage, config) -> EmailMessage:
    """The RFC 5322 message for a stored row (headers encoded by the standard library)."""
    msg = EmailMessage()
    sender = config["MAIL_FROM"]
    msg["From"] = sender
    msg["To"] = Address(display_name=row.to_name or "", addr_spec=row.to_addr)
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(now())
    domain = sender.rsplit("@", 1)[-1].strip(">") if "@" in sender else "localhost"
    msg["Message-ID"] = make_msgid(idstring=f"m{row.id}", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (row.headers or {}).items():
        msg[name] = VerbatimHeader(name, value)
    msg.set_content(row.body_text)
    msg.add_alternative(row.body_html, subtype="html")
    if row.attachment_blob_id is not None:
        from portal.storage import StoredBlob, read_blob

        blob = db.session.get(StoredBlob, row.attachment_blob_id)
        if blob is not None:  # gone (e.g. erased) means the mail goes without it
            msg.add_attachment(read_blob(blob), maintype="application", subtype="pdf",
                               filename=row.attachment_name or "bilaga.pdf")
    return msg
