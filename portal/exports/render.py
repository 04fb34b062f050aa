"""Turning an export document into files: the PDF (WeasyPrint), the JSON, the ZIP.

`safe_url_fetcher()` is the only URL fetcher any portal PDF should use (the billing PDF and
the request receipt too): it serves files under the project's static/ directory and refuses
everything else, so even a mistake that let markup through could not read a local file or
reach the network. User text reaches WeasyPrint only through Jinja templates with
autoescaping on (render_template with an .html template).
"""
from __future__ import annotations

import io
import json
import logging
import mimetypes
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from babel import dates as babel_dates
from flask import render_template
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _

from portal.clock import STOCKHOLM
from portal.config import ROOT
from portal.exports.labels import pdf_labels, when_long

log = logging.getLogger(__name__)

STATIC_ROOT = (ROOT / "static").resolve()
PDF_VARIANT = "pdf/ua-1"  # tagged PDF for screen readers; WeasyPrint 70 supports it
PDF_NAME = "cowrite-export.pdf"
JSON_NAME = "cowrite-export.json"
README_NAME = "README.txt"


class URLRefused(ValueError):
    """A PDF asked for a resource outside static/ (WeasyPrint logs it and goes on)."""


def safe_url_fetcher(root: Path = STATIC_ROOT):
    """A WeasyPrint URL fetcher that serves only regular files under `root` (static/).

    It records every URL it was asked for (`.requested`) and every one it refused
    (`.refused`), so tests can prove nothing else was fetched.
    """
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class SafeURLFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(timeout=1, allowed_protocols={"file"}, allow_redirects=False)
            self.root = root.resolve()
            self.requested: list[str] = []
            self.refused: list[str] = []

        def fetch(self, url, headers=None):
            self.requested.append(url)
            path = self.local_path(url)
            if path is None:
                self.refused.append(url)
                raise URLRefused("only files under static/ may be used in a PDF")
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), body=path.read_bytes(),
                                      headers={"Content-Type": mime})

        def local_path(self, url: str) -> Path | None:
            """The file under root that `url` names, or None for anything else."""
            try:
                parts = urlsplit(url)
            except ValueError:
                return None
            if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
                return None
            try:
                path = Path(url2pathname(parts.path)).resolve(strict=True)
            except (OSError, RuntimeError, ValueError):
                return None
            if not path.is_relative_to(self.root) or not path.is_file():
                return None
            return path

        def __call__(self, url):
            return self.fetch(url)

    return SafeURLFetcher()


def render_pdf(html: str, *, fetcher=None, after_layout: Callable[[], None] | None = None,
               variant: str | None = PDF_VARIANT) -> bytes:
    """HTML (already escaped by Jinja) to PDF bytes; relative URLs resolve inside static/.

    Tagged PDF/UA-1 by default; should WeasyPrint fail on it, the same document is rendered
    untagged rather than not at all (and the fallback is logged).
    """
    fetcher = fetcher if fetcher is not None else safe_url_fetcher()
    try:
        return _render(html, fetcher, after_layout, variant)
    except Exception as exc:
        if not variant:
            raise
        log.warning("%s rendering failed (%s); rendering an untagged PDF instead", variant,
                    type(exc).__name__)
        return _render(html, fetcher, None, None)


def _render(html: str, fetcher, after_layout, variant: str | None) -> bytes:
    from weasyprint import HTML

    options = {"pdf_variant": variant, "pdf_tags": True} if variant else {}
    document = HTML(string=html, base_url=str(STATIC_ROOT) + "/",
                    url_fetcher=fetcher).render(**options)
    if after_layout is not None:
        after_layout()
    return document.write_pdf(**options)


def export_html(document: dict, *, name: str, generated_at: datetime) -> str:
    """The PDF's HTML from templates/pdf/export.html (render inside force_locale)."""
    return render_template("pdf/export.html", doc=document, name=name,
                           generated_at=generated_at, when=_when_formatter(),
                           pdf_labels=pdf_labels())


def _when_formatter() -> Callable[..., str]:
    """Formats the document's ISO times in the reader's language and Stockholm time (the
    locale and zone looked up once: a log can hold thousands of times)."""
    locale, zone = get_locale(), get_timezone()

    def when(value: str | None, fmt: str = "medium") -> str:
        if not value:
            return ""
        moment = datetime.fromisoformat(value)
        if fmt == "long":
            return when_long(moment)
        return babel_dates.format_datetime(moment, fmt, tzinfo=zone, locale=locale)

    return when


def export_json(document: dict) -> bytes:
    """UTF-8 JSON with stable (sorted) keys."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8")


def readme_text(document: dict, generated_at: datetime) -> str:
    """The short README that goes into the ZIP (in the user's language)."""
    lines = [
        _("Your data at Cowrite"),
        "",
        _("Reference: %(reference)s", reference=document["reference"]),
        _("Created: %(when)s", when=when_long(generated_at)),
        "",
        _("This ZIP file holds a copy of all personal data that Cowrite's privacy portal "
          "has about you:"),
        "",
        f"- {PDF_NAME}: " + _("the data to read or print, with why we have it, who receives "
                              "it and how long we keep it."),
        f"- {JSON_NAME}: " + _("the same data in a machine-readable format (JSON, UTF-8) that "
                               "you can take to another service. Its structure is described "
                               "by %(schema)s.", schema=document["schema"]),
        "",
        _("The files contain personal data. Keep them somewhere safe and delete them when you "
          "no longer need them."),
        _("Questions? Write to our data protection officer: %(email)s",
          email=document["controller"]["data_protection_officer"]),
    ]
    return "\r\n".join(lines) + "\r\n"


def build_zip(pdf: bytes, json_bytes: bytes, readme: str, generated_at: datetime) -> bytes:
    """One ZIP with the PDF, the JSON and the README (timestamps in Stockholm time)."""
    stamp = generated_at.astimezone(STOCKHOLM).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in ((README_NAME, readme.encode("utf-8"), zipfile.ZIP_DEFLATED),
                                   (PDF_NAME, pdf, zipfile.ZIP_STORED),  # already compressed
                                   (JSON_NAME, json_bytes, zipfile.ZIP_DEFLATED)):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = method
            info.external_attr = 0o600 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
