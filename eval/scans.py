"""Scanned pages made here, with their text known: what OCR is measured on.

A page is text drawn with Pillow in one of several fonts, turned by a slight skew and
given a little noise, as a flatbed scan of a printed page looks. The same pages make the
tests' scanned PDF and photo (tests/test_ocr.py) and the OCR benchmark (eval/bench/ocr.py),
whose character error rate is measured against the text drawn.
"""

from __future__ import annotations

import io
import random
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Debian's fonts-dejavu-core and fonts-liberation (Makefile: `make test` installs them).
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
FONTS = ("DejaVuSerif.ttf", "LiberationSans-Regular.ttf", "DejaVuSans.ttf",
         "LiberationSerif-Regular.ttf", "LiberationMono-Regular.ttf")
DPI = 200


@dataclass(frozen=True, slots=True)
class Scan:
    """One page image (PNG bytes) and the text drawn on it, a line of text a line."""

    png: bytes
    text: str
    font: str
    skew: float


def font_path(name: str) -> Path:
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"font {name} not found: apt-get install fonts-dejavu-core "
                            "fonts-liberation")


def render(paragraphs: Sequence[str], font: str = FONTS[0], skew: float = 0.8,
           points: float = 12, width_chars: int = 70, seed: int = 0,
           size: tuple[int, int] | None = None) -> Scan:
    """A page (A4 at DPI unless ``size``) of ``paragraphs``, wrapped, in ``font`` at
    ``points``, turned by ``skew`` degrees, with speckle noise."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = size or (int(8.27 * DPI), int(11.69 * DPI))
    face = ImageFont.truetype(str(font_path(font)), int(points * DPI / 72))
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    margin = int(0.8 * DPI) if size is None else 40
    line_height = int(points * DPI / 72 * 1.5)
    y, lines = margin, []
    for paragraph in paragraphs:
        for line in textwrap.wrap(paragraph, width_chars):
            if y + line_height > height - margin:
                break
            draw.text((margin, y), line, font=face, fill=20)
            lines.append(line)
            y += line_height
        y += line_height // 2
    rng = random.Random(seed)
    pixels = page.load()
    assert pixels is not None
    for _ in range(width * height // 2000):  # dust
        pixels[rng.randrange(width), rng.randrange(height)] = rng.randrange(0, 160)
    page = page.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
    out = io.BytesIO()
    page.save(out, format="PNG", dpi=(DPI, DPI))
    return Scan(out.getvalue(), "\n".join(lines), font, skew)


def pdf_of(scans: Sequence[Scan]) -> bytes:
    """A PDF whose pages are the scans' images and nothing else (no text layer)."""
    from PIL import Image

    pages = [Image.open(io.BytesIO(s.png)).convert("L") for s in scans]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=DPI)
    return out.getvalue()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), two rows at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, read: str) -> float:
    """Character error rate: edits from what was read to what was drawn, per character
    drawn, whitespace runs counted as one space (line breaks are layout, not text)."""
    ref, got = " ".join(reference.split()), " ".join(read.split())
    return edit_distance(ref, got) / max(len(ref), 1)


PARAGRAPHS = (
    "The Aldermoor reservoir was completed in 1931 and holds 48 million cubic metres of "
    "water. Its dam is built of granite quarried four miles to the north, at Kestle Tor.",
    "Inspectors visit the spillway every March. The 2019 survey found that the eastern "
    "gate needed new seals, which were fitted by the Penrose Engineering Company at a cost "
    "of 212,000 pounds.",
    "Fishing is allowed from the western bank between April and October. Anglers must "
    "hold a permit from the Aldermoor Trust, whose office is at 14 Mill Lane, Tavistock.",
    "The valley below the dam was flooded when the reservoir filled, and the old village "
    "of Hendra now lies under eleven metres of water. In dry summers the church tower can "
    "still be seen above the surface.",
)



ROOMS = (("Room", "Beds", "Price per night"), ("Garden suite", "2", "140 euros"),
         ("Attic room", "1", "75 euros"), ("Lake view double", "2", "118 euros"))


def pdf_from_objects(objects: list[bytes], info: int | None = None) -> bytes:
    """Objects 1..n (1 the catalog) with their cross-reference table: a PDF by hand;
    ``info`` is the number of a document-information object, if any."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = b"/Size %d /Root 1 0 R" % (len(objects) + 1)
    if info is not None:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def table_pdf(pages: int = 1, rows: Sequence[Sequence[str]] = ROOMS,
              ruled: bool = True) -> bytes:
    """A text PDF (a text layer, no image) whose every page holds a heading, a caption
    line, a ruled table (``rows``, the first its headers) and a paragraph after it: what
    table extraction is tested and measured on. Without ``ruled`` the same text is drawn
    without the table's lines (no table is looked for: the cost's baseline)."""
    def text(x: float, y: float, s: str, size: int = 11) -> bytes:
        return b"BT /F1 %d Tf %.1f %.1f Td (%s) Tj ET\n" % (size, x, y, s.encode("latin-1"))

    streams = []
    widths = (150.0, 60.0, 130.0)
    for n in range(1, pages + 1):
        body = text(72, 720, f"Harbour Inn, page {n}", 16)
        body += text(72, 690, "Our rooms are let by the night, breakfast included.")
        body += text(72, 660, "Table 1: Room rates")
        top, height = 645.0, 22.0
        for r, row in enumerate(rows):
            x = 72.0
            for width, value in zip(widths, row, strict=True):
                if ruled:
                    body += b"%.1f %.1f %.1f %.1f re S\n" % (x, top - (r + 1) * height,
                                                               width, height)
                body += text(x + 4, top - (r + 1) * height + 7, value)
                x += width
        below = top - (len(rows) + 2) * height
        body += text(72, below, "Dogs are welcome in the garden suite for a small fee.")
        streams.append(body)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
                   b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(pages)), pages),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for body in streams:
        objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 3 0 R >> >> >>" % (len(objects) + 2),
                    b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"]
    return pdf_from_objects(objects)
