"""Letters as PDF (fpdf2, pure Python): for steps whose text a platform cannot carry, and written confirmations.

A letter is what the bookkeeper prints and posts (or attaches to a mail of their own): our creditor block, the
debtor's address, the date, the rendered text and, for an agreement, its instalments, sanction and a signature
block. Files are written atomically under the data folder, named by the outbox key, so a re-run writes the same
file and never a second letter.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from connector.models import Debtor

_SUBSTITUTES = {"€": "EUR", "‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."}
"""The PDF core fonts cover Latin-1 only; these few characters are written in plain equivalents."""


@dataclass(frozen=True)
class Letter:
    """What goes on one letter."""

    sender: tuple[str, ...]
    """The creditor's name and address lines (and contact details)."""
    debtor: Debtor
    on: date
    subject: str
    body: str
    lines: tuple[tuple[str, str], ...] = ()
    """A table under the text: (label, amount) rows, e.g. the invoices or the instalments."""
    signature: tuple[str, ...] = ()
    """Signature lines for an agreement to be signed by the debtor (empty: none)."""
    reference: str = ""
    footer: tuple[str, ...] = field(default_factory=tuple)


def _plain(text: str) -> str:
    for char, plain in _SUBSTITUTES.items():
        text = text.replace(char, plain)
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(letter: Letter) -> bytes:
    """The letter as PDF bytes (A4, one or more pages)."""
    from fpdf import FPDF  # imported when a letter is written: it takes most of a second

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_title(_plain(letter.subject))
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for line in letter.sender:
        pdf.cell(0, 5, _plain(line), new_x="LMARGIN", new_y="NEXT", align="R")
    pdf.ln(10)
    address = [letter.debtor.name]
    if letter.debtor.address.attention:
        address.append(f"t.a.v. {letter.debtor.address.attention}")
    address += list(letter.debtor.address.lines)
    address.append(" ".join(filter(None, (letter.debtor.address.postal_code, letter.debtor.address.city))))
    if letter.debtor.address.country:
        address.append(letter.debtor.address.country)
    for line in filter(None, address):
        pdf.cell(0, 5, _plain(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.cell(0, 5, _plain(letter.on.isoformat()), new_x="LMARGIN", new_y="NEXT")
    if letter.reference:
        pdf.cell(0, 5, _plain(letter.reference), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("Helvetica", style="B", size=11)
    pdf.multi_cell(0, 6, _plain(letter.subject), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, _plain(letter.body), new_x="LMARGIN", new_y="NEXT")
    if letter.lines:
        pdf.ln(4)
        for label, amount in letter.lines:
            pdf.cell(120, 6, _plain(label), border="B")
            pdf.cell(0, 6, _plain(amount), border="B", new_x="LMARGIN", new_y="NEXT", align="R")
    if letter.signature:
        pdf.ln(12)
        for line in letter.signature:
            pdf.cell(0, 8, _plain(line), new_x="LMARGIN", new_y="NEXT")
    if letter.footer:
        pdf.ln(8)
        pdf.set_font("Helvetica", size=8)
        for line in letter.footer:
            pdf.cell(0, 4, _plain(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def save_letter(folder: Path, name: str, content: bytes) -> Path:
    """Write `content` as `<folder>/<name>.pdf` atomically (0600: it carries personal data); returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.pdf"
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def signature_block(creditor: str, debtor: str) -> tuple[str, ...]:
    return (
        "Voor akkoord / Agreed,",
        f"{debtor}: ______________________________   date: ____________",
        f"{creditor}: ______________________________   date: ____________",
    )


def sender_lines(name: str, extra: Sequence[str | None]) -> tuple[str, ...]:
    return (name, *(line for line in extra if line))
