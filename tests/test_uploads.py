"""ID uploads: type by content, re-encoded without metadata, PDFs rendered, hostile files refused."""
import hashlib
import io
import zipfile

import pytest
from PIL import Image

from portal.requests.uploads import (MAX_BYTES, UploadRejected, process_id_upload, sniff)


def jpeg_with_gps(size=(800, 500)) -> bytes:
    img = Image.new("RGB", size, (200, 180, 160))
    exif = Image.Exif()
    exif[0x010F] = "KameraTillverkare"  # Make
    exif[0x8825] = {1: "N", 2: (59.0, 19.0, 0.0), 3: "E", 4: (18.0, 4.0, 0.0)}  # GPS
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, comment=b"hemlig kommentar")
    return out.getvalue()


def png(size=(400, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, "PNG")
    return out.getvalue()


def pdf(extra: bytes = b"") -> bytes:
    """A tiny one-page PDF, built by hand so the test controls every byte."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R" + extra + b" >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"]
    body, offsets = b"%PDF-1.4\n", []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body


def test_jpeg_is_reencoded_without_exif_gps_or_comment():
    data = jpeg_with_gps()
    result = process_id_upload(data, "körkort.jpg")
    assert result.kind == "jpeg" and result.sha256 == hashlib.sha256(data).hexdigest()
    (page,) = result.pages
    with Image.open(io.BytesIO(page)) as img:
        assert img.format == "JPEG" and img.size == (800, 500)
        assert not img.getexif() and "comment" not in img.info and "icc_profile" not in img.info
    assert b"KameraTillverkare" not in page and b"hemlig" not in page


def test_png_and_heic_are_accepted_and_become_jpeg():
    assert process_id_upload(png()).kind == "png"
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (1, 2, 3)).save(out, "HEIF")
    result = process_id_upload(out.getvalue(), "IMG_0001.HEIC")
    assert result.kind == "heic" and result.pages[0].startswith(b"\xff\xd8\xff")


def test_pdf_is_rendered_to_images():
    result = process_id_upload(pdf(), "skanning.pdf")
    assert result.kind == "pdf" and len(result.pages) == 1
    with Image.open(io.BytesIO(result.pages[0])) as img:
        assert img.format == "JPEG" and img.width > 1000  # rendered at 150 dpi


def polyglot() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.txt", "gömt")
    return jpeg_with_gps() + archive.getvalue()


HOSTILE = {
    "empty": (b"", "tom"),
    "too-large": (b"\xff\xd8\xff" + b"0" * MAX_BYTES, "större än 10 MB"),
    "script-as-jpg": (b"#!/bin/sh\nrm -rf /\n", "JPEG, PNG eller HEIC"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "JPEG, PNG eller HEIC"),
    "html": (b"<!doctype html><script>alert(1)</script>", "JPEG, PNG eller HEIC"),
    "jpeg-zip-polyglot": (polyglot(), "något annat än bilden"),
    "pdf-javascript": (pdf(b" /OpenAction << /S /JavaScript /JS (app.alert(1)) >>"),
                       "skript eller bifogade filer"),
    "pdf-embedded-file": (pdf(b" /Names << /EmbeddedFiles << /Names [] >> >>"),
                          "skript eller bifogade filer"),
    "broken-jpeg": (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "kunde inte läsas"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_are_refused_with_a_swedish_reason(app, name):
    data, swedish = HOSTILE[name]
    with app.test_request_context(headers={"Accept-Language": "sv"}):
        with pytest.raises(UploadRejected) as info:
            process_id_upload(data, "fil.jpg")
        assert swedish in str(info.value.message)


def test_too_many_pixels_is_refused_before_decoding(app):
    big = io.BytesIO()
    Image.new("1", (8000, 6000)).save(big, "PNG")  # 48 MP, a few kB compressed
    with app.test_request_context():
        with pytest.raises(UploadRejected) as info:
            process_id_upload(big.getvalue())
        assert "40 megapixlar" in str(info.value.message)


@pytest.mark.parametrize("filename", ["../../etc/passwd.jpg", "..\\..\\boot.ini",
                                      "a" * 300 + ".jpg", "ny\nrad.jpg"])
def test_hostile_file_names_are_refused(app, filename):
    with app.test_request_context():
        with pytest.raises(UploadRejected):
            process_id_upload(jpeg_with_gps(), filename)


def test_the_file_name_never_decides_the_type():
    assert sniff(png()) == "png"
    assert process_id_upload(png(), "bild.pdf").kind == "png"
