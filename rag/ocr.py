"""Text out of page images: scanned PDF pages and image files, read with Tesseract.

Tesseract 5 (its LSTM engine) runs in this process through tesserocr, whose wheel carries
the library; the language data is Debian's (`tesseract-ocr-eng`, installed by `make run`
and `make test`), found in its usual folders or at RAG_OCR_TESSDATA. Nothing is downloaded.
Chosen over pytesseract (the same engine through a subprocess a page: half the speed) and
RapidOCR (ships its ONNX models, but 25 times the error rate on serif and monospace text
and a sixth of the speed): docs/benchmarks.md "OCR and tables" has the figures,
`python -m eval.bench.ocr` measures them.

This runs inside the parse worker (rag.isolation): the caller sees each page start
(``on_page``), so it can give every page its own time budget and show progress.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import FileTooLargeError, SettingsError, UnreadableFileError

if TYPE_CHECKING:
    from PIL.Image import Image

# Image files read with OCR (by content: PNG, JPEG, TIFF, WebP; the suffix only has to be
# one of these).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
IMAGE_MAGIC = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg", b"II*\x00": "tiff",
               b"MM\x00*": "tiff"}
# A page or image over this many pixels is refused before it is decoded (an A4 page at 600
# dpi has 35 million): a small PNG can claim a huge canvas.
MAX_IMAGE_PIXELS = 80_000_000
MAX_IMAGE_FRAMES = 1_000  # pages of a multi-page TIFF
# A PDF page holding an image is read with OCR when its text layer has fewer characters
# than this per square inch: a page of text has 20-40, a scan with a stamped page number
# or an invisible header well under 1.
MIN_CHARS_PER_SQUARE_INCH = 2.0
TESSDATA_DIRS = (Path("/usr/share/tesseract-ocr/5/tessdata"),
                 Path("/usr/share/tesseract-ocr/4.00/tessdata"), Path("/usr/share/tessdata"),
                 Path("/usr/local/share/tessdata"))
PageStart = Callable[[int, int], None]  # (pages done, pages in all): a page starts or all end


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How pages are read (rag.config.Settings: RAG_OCR_LANGUAGES, RAG_OCR_TESSDATA,
    RAG_OCR_DPI); RAG_OCR=off means no options at all."""

    languages: str = "eng"
    tessdata: str | None = None
    dpi: int = 200


@dataclass(frozen=True, slots=True)
class PageText:
    """What OCR read on one page, and its mean word confidence (0-1)."""

    text: str
    confidence: float


_SOFT_HYPHEN_END = re.compile(r"(?<=[^\W\d_])-$")


def reflow(text: str) -> str:
    """OCR's lines as paragraphs: a printed line break is a wrap, not a sentence's end, so a
    paragraph becomes one line (a word hyphenated across lines is joined). A blank line
    stays a paragraph break after a sentence's end or a short line (a title)."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    short = 0.6 * max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current, last = "", ""
    for line in lines:
        if not line:
            if current and (current.endswith((".", "!", "?", ":")) or len(last) < short):
                paragraphs.append(current)
                current = ""
            continue
        if not current:
            current = line
        elif _SOFT_HYPHEN_END.search(current) and line[:1].islower():
            current = current[:-1] + line
        else:
            current += " " + line
        last = line
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)


def is_image(data: bytes) -> bool:
    return any(data.startswith(m) for m in IMAGE_MAGIC) or \
        (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def tessdata(options: OcrOptions) -> Path:
    """The folder holding the languages' .traineddata files."""
    folders = [Path(options.tessdata)] if options.tessdata else list(TESSDATA_DIRS)
    wanted = options.languages.split("+")
    for folder in folders:
        if all((folder / f"{lang}.traineddata").is_file() for lang in wanted):
            return folder
    where = options.tessdata or ", ".join(map(str, TESSDATA_DIRS))
    raise SettingsError(
        f"OCR needs Tesseract's data for {options.languages!r}, not found in {where}: run "
        "`apt-get install tesseract-ocr tesseract-ocr-eng` (make run does), set "
        "RAG_OCR_TESSDATA, or turn OCR off (RAG_OCR=off, rag ingest --no-ocr)")


class PageReader:
    """Tesseract opened once for a file's pages; ``on_page`` hears of each page before it
    is read, and once more when all are."""

    def __init__(self, options: OcrOptions, on_page: PageStart | None = None) -> None:
        self.options, self.on_page = options, on_page or (lambda done, total: None)

    def read(self, images: Iterator[Image], total: int) -> list[PageText]:
        try:
            import tesserocr
        except ImportError:
            raise SettingsError("OCR needs the tesserocr package (a dependency: reinstall "
                                "with `make install`), or turn it off (RAG_OCR=off)") from None

        out: list[PageText] = []
        with tesserocr.PyTessBaseAPI(path=str(tessdata(self.options)),
                                     lang=self.options.languages) as api:
            for done, image in enumerate(images):
                self.on_page(done, total)
                api.SetImage(image)
                text = api.GetUTF8Text()
                words = api.AllWordConfidences()
                confidence = sum(words) / len(words) / 100 if words else 0.0
                out.append(PageText(reflow(text), round(confidence, 4)))
        self.on_page(total, total)
        return out


def _checked(image: Image, name: str) -> Image:
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise FileTooLargeError(f"{name}: an image of {image.width}x{image.height} pixels is "
                                f"over the limit of {MAX_IMAGE_PIXELS}; scale it down")
    return image


def image_pages(data: bytes, name: str) -> tuple[int, Iterator[Image]]:
    """An image file's pages (a TIFF can hold several), decoded one at a time."""
    from PIL import Image as PILImage
    from PIL import ImageSequence, UnidentifiedImageError

    PILImage.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        image = PILImage.open(io.BytesIO(data))
        _checked(image, name)
        frames = getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, PILImage.DecompressionBombError, OSError,
            SyntaxError, ValueError) as exc:
        raise UnreadableFileError(f"{name}: not a readable image ({exc})") from None
    if frames > MAX_IMAGE_FRAMES:
        raise FileTooLargeError(f"{name}: {frames} pages is over the limit of "
                                f"{MAX_IMAGE_FRAMES}; split the file")

    def decode() -> Iterator[Image]:
        try:
            for frame in ImageSequence.Iterator(image):
                yield _checked(frame, name).convert("L")
        except (OSError, SyntaxError, ValueError) as exc:
            raise UnreadableFileError(f"{name}: not a readable image ({exc})") from None

    return frames, decode()


def pdf_pages(data: bytes, numbers: Sequence[int], dpi: int, name: str) -> Iterator[Image]:
    """The PDF's pages ``numbers`` (from 1) rendered in grey at ``dpi`` (PDFium)."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        for number in numbers:
            page = pdf[number - 1]
            width, height = page.get_size()  # points
            if width * height * (dpi / 72) ** 2 > MAX_IMAGE_PIXELS:
                raise FileTooLargeError(f"{name}: page {number} is {width / 72:.0f}x"
                                        f"{height / 72:.0f} inches, too large to read with "
                                        f"OCR at {dpi} dpi")
            yield page.render(scale=dpi / 72, grayscale=True).to_pil()
            page.close()
    finally:
        pdf.close()
