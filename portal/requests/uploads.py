"""ID-document uploads, handled as the most sensitive data the portal holds.

The type is decided by content, never by name or header. Images are decoded and re-encoded
(metadata such as GPS is dropped); PDFs are rendered to images so the original document is
never shown to anyone. Only the SHA-256 of what was received is kept of the original.
"""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from portal.i18n import lazy_gettext as _l

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_PDF_PAGES = 5
PDF_RENDER_SCALE = 150 / 72  # 150 dpi
JPEG_QUALITY = 85

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|EmbeddedFiles?|Launch|RichMedia|XFA|AA)\b")


class UploadRejected(ValueError):
    """The upload cannot be accepted; `message` says why, in the user's language."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class ProcessedUpload:
    kind: str                  # jpeg, png, heic or pdf: what was received
    sha256: str                # of the bytes received
    received_size: int
    pages: tuple[bytes, ...]   # re-encoded JPEG images, one per page


def sniff(data: bytes) -> str | None:
    """The file type by its first bytes, or None for anything we do not accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "heic"
    if data.startswith(b"%PDF-"):
        return "pdf"
    return None


def check_filename(name: str | None) -> None:
    """The name is never used, but a hostile one is refused rather than ignored."""
    name = name or ""
    if len(name) > 255:
        raise UploadRejected(_l("The file name is too long (at most 255 characters). "
                                "Rename the file and try again."))
    if any(ch in name for ch in "/\\") or any(unicodedata.category(c) == "Cc" for c in name):
        raise UploadRejected(_l("The file name contains characters that cannot be used. "
                                "Rename the file and try again."))


def process_id_upload(data: bytes, filename: str | None = None) -> ProcessedUpload:
    """Validate by content and re-encode; raises UploadRejected with a reason."""
    check_filename(filename)
    if not data:
        raise UploadRejected(_l("The file is empty. Choose a photo or scan of your ID document."))
    if len(data) > MAX_BYTES:
        raise UploadRejected(_l("The file is larger than 10 MB. Take a new photo with lower "
                                "resolution or scan at a lower resolution."))
    kind = sniff(data)
    if kind is None:
        raise UploadRejected(_l("The file must be a photo (JPEG, PNG or HEIC) or a PDF. "
                                "Other kinds of files cannot be used."))
    if b"PK\x03\x04" in data or b"PK\x05\x06" in data:
        raise UploadRejected(_l("The file contains something other than the picture (for "
                                "example an archive). Save the picture again and upload it."))
    pages = _render_pdf(data) if kind == "pdf" else (_reencode_image(data, kind),)
    return ProcessedUpload(kind=kind, sha256=hashlib.sha256(data).hexdigest(),
                           received_size=len(data), pages=pages)


def _too_many_pixels():
    return UploadRejected(_l("The picture has too many pixels (at most 40 megapixels). "
                             "Take a new photo with lower resolution."))


def _reencode_image(data: bytes, kind: str) -> bytes:
    if kind == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise _too_many_pixels()
            img.load()
            upright = ImageOps.exif_transpose(img).convert("RGB")
    except UploadRejected:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            SyntaxError):
        raise UploadRejected(_l("The picture could not be read. Take a new photo and try "
                                "again.")) from None
    return _jpeg(upright)


def _jpeg(image: Image.Image) -> bytes:
    """A fresh JPEG from pixels only: no EXIF, GPS, ICC profile or comments survive."""
    clean = Image.frombytes("RGB", image.size, image.tobytes())
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def _render_pdf(data: bytes) -> tuple[bytes, ...]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    if _PDF_ACTIVE.search(data):
        raise UploadRejected(_l("The PDF contains scripts or attached files and cannot be "
                                "used. Print it to a new PDF or take a photo instead."))
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        raise UploadRejected(_l("The PDF could not be opened. It may be damaged or "
                                "password-protected.")) from None
    try:
        if (pdfium_c.FPDFDoc_GetJavaScriptActionCount(pdf.raw) > 0
                or pdfium_c.FPDFDoc_GetAttachmentCount(pdf.raw) > 0):
            raise UploadRejected(_l("The PDF contains scripts or attached files and cannot be "
                                    "used. Print it to a new PDF or take a photo instead."))
        if len(pdf) == 0 or len(pdf) > MAX_PDF_PAGES:
            raise UploadRejected(_l("The PDF must have between 1 and 5 pages."))
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            width, height = page.get_size()
            if width * height * PDF_RENDER_SCALE ** 2 > MAX_PIXELS:
                raise _too_many_pixels()
            pages.append(_jpeg(page.render(scale=PDF_RENDER_SCALE).to_pil().convert("RGB")))
        return tuple(pages)
    finally:
        pdf.close()
