"""Delivery backends: `file` writes .eml files (development), `smtp` talks to a relay."""
from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path


def send_file(msg: EmailMessage, config) -> None:
    """Write the message atomically as one .eml file in the outbox directory."""
    outbox = Path(config["MAIL_OUTBOX"])
    outbox.mkdir(parents=True, exist_ok=True)
    name = msg["Message-ID"].strip("<>").replace("@", "_").replace("/", "_")
    fd, tmp = tempfile.mkstemp(dir=outbox, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(msg.as_bytes())
    os.chmod(tmp, 0o600)
    os.replace(tmp, outbox / f"{name}.eml")


def send_smtp(msg: EmailMessage, config) -> None:
    """Send through SMTP with STARTTLS, implicit TLS or (loopback only) plain."""
    host, port = config["SMTP_HOST"], config["SMTP_PORT"]
    security, timeout = config["SMTP_SECURITY"], config["SMTP_TIMEOUT"]
    context = ssl.create_default_context()
    if security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if security == "starttls":
            client.starttls(context=context)
        if config["SMTP_USERNAME"]:
            client.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
        client.send_message(msg)


BACKENDS = {"file": send_file, "smtp": send_smtp}
