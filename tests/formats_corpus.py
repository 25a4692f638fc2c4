"""Real files of every supported format, made with the libraries that read them.

Each holds one fact (FACTS: file name -> a question and the words its answer holds) so a
test can ingest them as a folder and find each; the hostile ones are built the same way.
"""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

from eval.scans import pdf_from_objects

FACTS = {
    "handbook.docx": ("Which command installs the agent on Linux?", "apt install tealeaf-agent"),
    "deck.pptx": ("What was the churn rate in the third quarter?", "4.2 percent"),
    "staff.xlsx": ("Which city is Alice Moreau based in?", "Lisbon"),
    "prices.csv": ("How much does the jasmine pearl tea cost?", "18.50"),
    "book.epub": ("Where did the lighthouse keeper hide the ledger?", "under the stone stair"),
    "mail.eml": ("When does the warehouse audit start?", "March 14"),
}


def docx_bytes() -> bytes:
    from docx import Document

    doc = Document()
    doc.core_properties.title = "Agent handbook"
    doc.add_heading("Installation", level=1)
    doc.add_paragraph("The agent runs on every supported server.")
    doc.add_heading("Linux", level=2)
    doc.add_paragraph("On Linux the agent is installed with apt install tealeaf-agent "
                      "and then started by systemd.")
    doc.add_paragraph("Open these ports:")
    table = doc.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Port", "Protocol"
    table.cell(1, 0).text, table.cell(1, 1).text = "8443", "HTTPS"
    doc.add_heading("Windows", level=2)
    doc.add_paragraph("On Windows the MSI package installs the agent as a service.")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation

    deck = Presentation()
    for title, body, notes in (
            ("Quarterly review", "Revenue grew in every region.", "Open with the map."),
            ("Retention", "The churn rate in the third quarter fell to 4.2 percent.", ""),
            ("Next steps", "Hire two support engineers in Berlin.", "Ask for budget.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    people = book.active
    people.title = "People"
    for row in (("Name", "City", "Started"), ("Alice Moreau", "Lisbon", 2019),
                ("Bruno Silva", "Porto", 2021)):
        people.append(row)
    stock = book.create_sheet("Stock")
    for stock_row in (("Item", "Count"), ("Kettles", 40), ("Cups", 1200)):
        stock.append(stock_row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes() -> bytes:
    return (b"Tea,Origin,Price\nJasmine pearl,Fujian,18.50\nSencha,Shizuoka,12.00\n"
            b"Assam,India,9.75\n")


def epub_bytes(tmp: Path) -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("lighthouse-001")
    book.set_title("The Lighthouse Ledger")
    book.set_language("en")
    chapters = []
    for n, text in enumerate((
            "The keeper counted the ships that passed in the storm.",
            "Before the inspectors came, the keeper hid the ledger under the stone stair.",
            "In spring the ledger was found and the debts were paid."), start=1):
        chapter = epub.EpubHtml(title=f"Chapter {n}", file_name=f"ch{n}.xhtml", lang="en")
        chapter.content = f"<h1>Chapter {n}</h1><p>{text}</p>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    path = tmp / "book.epub"
    epub.write_epub(str(path), book)
    return path.read_bytes()


def eml_bytes() -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "Warehouse audit"
    msg["From"] = "Dana Reyes <dana@example.com>"
    msg["To"] = "ops@example.com"
    msg["Date"] = "Mon, 03 Mar 2025 09:30:00 +0000"
    msg.set_content("Hello team,\n\nThe warehouse audit starts on March 14 at the Leeds site.\n")
    msg.add_attachment(docx_bytes(), maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                       filename="handbook-copy.docx")
    msg.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(64), maintype="image", subtype="png",
                       filename="logo.png")
    return msg.as_bytes()


REPORT_FACT = ("Who opened the Oslo office?", "Ingrid Berg", 17)  # question, answer, page
_TOPICS = ("harbour cranes", "wind farms", "school meals", "rail freight", "river dredging",
           "bakery exports", "museum visits", "bicycle lanes", "forest fires", "textile mills",
           "tram repairs", "salt mining", "ferry routes", "apple orchards", "glass recycling",
           "street lighting", "dairy prices", "library loans", "postal sorting", "road salt",
           "copper wiring", "canal locks", "wool auctions", "fish quotas", "bridge paint",
           "stone quarries", "tea imports", "clock towers", "rope making", "kite festivals")


def report_pages() -> list[list[str]]:
    """Thirty pages of a report, a topic each; page 17 says who opened the Oslo office."""
    pages = []
    for n, topic in enumerate(_TOPICS, start=1):
        lines = [f"Section {n}: {topic}.",
                 f"The committee reviewed {topic} in every county during the year.",
                 f"Spending on {topic} rose by {n} percent against the year before.",
                 f"A working group will report on {topic} again next spring."]
        if n == REPORT_FACT[2]:
            lines.insert(2, "The Oslo office was opened in March by Ingrid Berg, who leads "
                            "the northern region.")
        pages.append(lines)
    return pages


def pdf_bytes(pages: list[list[str]], title: str = "Annual report") -> bytes:
    """A PDF of these pages (lines of Helvetica), written by hand: no PDF writer needed."""
    n = len(pages)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
                   b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n)), n),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for lines in pages:
        shown = b" 0 -16 Td ".join(
            b"(" + line.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(")
            .replace(b")", b"\\)") + b") Tj" for line in lines)
        stream = b"BT /F1 11 Tf 72 720 Td " + shown + b" ET"
        objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 3 0 R >> >> >>" % (len(objects) + 2),
                    b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    objects.append(b"<< /Title (%s) >>" % title.encode("latin-1"))
    return pdf_from_objects(objects, info=len(objects))


GUIDE_MD = """# Tealeaf guide

Tealeaf keeps tea shops stocked.

## Installation

The agent runs on every supported server.

### Linux

```sh
# not a heading: a comment in a code block
apt install tealeaf-agent
```

On Linux the agent is installed with apt and started by systemd.

### Windows ###

On Windows the MSI package installs the agent as a service.

## Usage

Run tealeaf sync every morning.
"""

GUIDE_HTML = b"""<!doctype html><html><head><title>Tealeaf guide</title>
<script>var h2 = "<h2>not a heading</h2>";</script></head><body>
<p>Tealeaf keeps tea shops stocked.</p>
<h1>Installation</h1><p>The agent runs on every supported server.</p>
<h2>Linux <small>(x86 and arm)</small></h2><p>On Linux the agent is installed with apt.</p>
<h2>Windows</h2><div><p>On Windows the MSI package installs the agent.</p></div>
<h1>Usage</h1><p>Run tealeaf sync every morning.</p>
</body></html>"""


def write_all(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    makers = {"handbook.docx": docx_bytes, "deck.pptx": pptx_bytes, "staff.xlsx": xlsx_bytes,
              "prices.csv": csv_bytes, "mail.eml": eml_bytes}
    for name, make in makers.items():
        (folder / name).write_bytes(make())
    (folder / "book.epub").write_bytes(epub_bytes(folder))
    return folder


def rezip(data: bytes, replace: dict[str, bytes] | None = None,
          extra: dict[str, bytes] | None = None) -> bytes:
    """The same zip with some entries replaced or added (hostile variants of real files)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, (replace or {}).get(info.filename,
                                                            src.read(info.filename)))
        for name, body in (extra or {}).items():
            dst.writestr(name, body)
    return out.getvalue()


def zip_bomb_docx(unpacked: int) -> bytes:
    """A real .docx plus one entry of ``unpacked`` zero bytes (about 1000:1 compressed)."""
    out = io.BytesIO(rezip(docx_bytes()))
    info = zipfile.ZipInfo("word/media/zeros.bin")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "a") as z, z.open(info, "w", force_zip64=True) as entry:
        block = bytes(1 << 20)
        for _ in range(unpacked >> 20):
            entry.write(block)
    return out.getvalue()


def entity_bomb_docx() -> bytes:
    """A real .docx whose document.xml declares the "billion laughs" entities."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10))
    body = (f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>")
    return rezip(docx_bytes(), replace={"word/document.xml": body.encode()})


def slow_html(elements: int = 299_000) -> bytes:
    """HTML that Python's parser takes seconds over (each tag with attributes), just under the
    element cap, whose text is two words: for uploads that are still being parsed."""
    return (b"<html><body>" + b'<div class="a b" id="i" title="t" data-a="1">' * elements
            + b"slow page" + b"</div>" * elements)
